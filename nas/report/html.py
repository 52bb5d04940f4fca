"""HTML building blocks of ``nas report``: the page with its inline style, sections, tables, figures.

Everything is escaped here; no script, no external resource, so the page renders offline.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Iterable, Sequence

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:12px 24px 48px}
header{background:#1f3b57;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.8;font-size:12px}
nav{background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;position:sticky;top:0;font-size:13px}
nav a{margin-right:14px;color:#1f5f9f;text-decoration:none}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;margin:16px 0;padding:8px 18px 14px}
h2{font-size:18px;border-bottom:1px solid #eee;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:3px 8px;text-align:left;vertical-align:top}
td.wrap{overflow-wrap:anywhere;min-width:16em}
th{background:#f0f3f6}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:420px}
figure{margin:10px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555}
.arch{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
table.top tr.label td{background:#fff;color:#444;border-top:none}table.top tr:not(.label) td{border-bottom:none}
.muted{color:#777}.badge{display:inline-block;padding:1px 7px;border-radius:9px;background:#e8eef5;font-size:12px}
.badge.run{background:#fff3cd}.badge.ok{background:#d4edda}.badge.stop{background:#f8d7da}
"""


def esc(value: Any) -> str:
    """Text escaped for HTML."""
    return html.escape(str(value), quote=True)


def page(title: str, subtitle: str, sections: Iterable[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are (id, heading, body HTML)."""
    sections = list(sections)
    nav = "".join(f'<a href="#{esc(i)}">{esc(h)}</a>' for i, h, _ in sections)
    body = "".join(section(i, h, b) for i, h, b in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header><nav>{nav}</nav>"
            f"<main>{body}</main></body></html>\n")


def section(ident: str, heading: str, body: str) -> str:
    """One section with an anchor."""
    return f'<section id="{esc(ident)}"><h2>{esc(heading)}</h2>{body}</section>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (),
          raw: Sequence[int] = (), wrap: Sequence[int] = ()) -> str:
    """A table; columns in ``numeric`` right-aligned, in ``raw`` already HTML, in ``wrap`` long text
    that may break anywhere (architecture strings)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    lines = []
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            text = cell if index in raw else esc(cell)
            kind = "num" if index in numeric else "wrap" if index in wrap else ""
            cells.append(f'<td class="{kind}">{text}</td>' if kind else f"<td>{text}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def figure(png: bytes, alt: str, caption: str = "", points: Sequence[int] | None = None) -> str:
    """An embedded PNG; ``points`` (trial markers per axes) goes into ``data-points`` for checks."""
    data = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    extra = f' data-points="{",".join(str(p) for p in points)}"' if points is not None else ""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data}" alt="{esc(alt)}"{extra}>{cap}</figure>'


def dl(items: Iterable[tuple[str, Any]], raw: bool = False) -> str:
    """A two-column key/value table (values already HTML if ``raw``)."""
    rows = "".join(f'<tr><th>{esc(k)}</th><td class="wrap">{v if raw else esc(v)}</td></tr>' for k, v in items)
    return f"<table>{rows}</table>"


def paragraph(text: str) -> str:
    return f'<p class="muted">{esc(text)}</p>'
