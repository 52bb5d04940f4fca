"""Picture of an EfficientNet layout: the paper's Table 1 (operator, resolution, channels, layers) with
each row's share of the multiply-accumulates as a bar beside it."""

from __future__ import annotations

from typing import Any

from search_spaces.drawing import new_figure, save
from search_spaces.scaling.layout import NetworkPlan, block_cost

_COLUMNS = ("stage", "operator", "resolution", "channels", "layers", "stride", "SE ch.", "params", "MACs")
_WIDTHS = (0.07, 0.19, 0.11, 0.12, 0.08, 0.08, 0.09, 0.13, 0.13)


def _human(value: int) -> str:
    """1234567 -> '1.23M'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return str(value)


def stage_rows(plan: NetworkPlan) -> list[tuple[list[str], int]]:
    """Table rows (cells, MACs): stem, one per stage, head."""
    (h, w), c_img = plan.size, plan.image_channels
    stem_macs = c_img * plan.stem * 9 * plan.stem_size[0] * plan.stem_size[1]
    rows = [(["stem", "Conv3x3", f"{h}x{w}", str(plan.stem), "1", str(plan.stem_stride), "-",
              _human(c_img * plan.stem * 9 + 2 * plan.stem), _human(stem_macs)], stem_macs)]
    for stage in sorted({b.stage for b in plan.blocks}):
        blocks = [b for b in plan.blocks if b.stage == stage]
        first = blocks[0]
        params = sum(block_cost(b)[0] for b in blocks)
        macs = sum(block_cost(b)[1] for b in blocks)
        se = f"{first.se_channels}" if first.se_channels else "-"
        rows.append(([str(stage + 1), f"MBConv{first.expansion}, k{first.kernel}x{first.kernel}",
                      f"{first.size_in[0]}x{first.size_in[1]}", str(first.c_out), str(len(blocks)),
                      str(first.stride), se, _human(params), _human(macs)], macs))
    last = plan.blocks[-1] if plan.blocks else None
    c_last = last.c_out if last else plan.stem
    hh, ww = last.size_out if last else plan.stem_size
    head_macs = c_last * plan.head * hh * ww + plan.head * plan.num_classes
    head_params = c_last * plan.head + 2 * plan.head + (plan.head + 1) * plan.num_classes
    rows.append((["head", "Conv1x1, pool, FC", f"{hh}x{ww}", f"{plan.head}->{plan.num_classes}", "1", "1",
                  "-", _human(head_params), _human(head_macs)], head_macs))
    return rows


def draw_stages(plan: NetworkPlan, title: str, path: str) -> None:
    """Write a PNG of the stage table of ``plan`` to ``path``."""
    rows = stage_rows(plan)
    n = len(rows)
    fig, ax = new_figure(12.0, 0.38 * (n + 1) + 1.1)
    ax.remove()
    table_ax, bar_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [4.2, 1.0]})
    table_ax.set_axis_off()
    table = table_ax.table(cellText=[cells for cells, _ in rows], colLabels=_COLUMNS, loc="center",
                           cellLoc="center", colWidths=list(_WIDTHS), bbox=[0.0, 0.0, 1.0, 1.0])
    table.auto_set_font_size(False)
    table.set_fontsize(8.5)
    for (row, _), cell in table.get_celld().items():
        cell.set_edgecolor("0.75")
        if row == 0:
            cell.set_facecolor("#dbe9f6")
            cell.set_text_props(weight="bold")
        elif row in (1, n):
            cell.set_facecolor("#f2f2f2")
    _bars(bar_ax, [macs for _, macs in rows])
    fig.suptitle(title, fontsize=9)
    save(fig, path)


def _bars(ax: Any, macs: list[int]) -> None:
    """Horizontal bars of each row's share of the MACs, aligned with the table rows."""
    n, total = len(macs), max(1, sum(macs))
    shares = [100.0 * m / total for m in macs]
    ys = [n - i - 0.5 for i in range(n)]
    ax.barh(ys, shares, height=0.7, color="#7aa6d6")
    for y, share in zip(ys, shares):
        ax.text(share + 1.0, y, f"{share:.0f}%", va="center", fontsize=7.5)
    ax.set_ylim(0, n + 1)
    ax.set_xlim(0, max(shares) * 1.3 + 1)
    ax.text(0.5, n + 0.5, "share of MACs", ha="center", va="center", fontsize=8.5, weight="bold",
            transform=ax.transData)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=7)
