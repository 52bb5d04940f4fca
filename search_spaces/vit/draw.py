"""Picture of a vit layout: stem, stages and head left to right, one box per stage coloured by its type, each
box as tall as the stage's channels and captioned with its grid, depth and choices; beneath, each part's
share of the multiply-accumulates."""

from __future__ import annotations

from typing import Any

from search_spaces.drawing import new_figure, save
from search_spaces.vit.layout import NetworkPlan, StagePlan, head_cost, stage_cost, stem_cost

COLORS = {"stem": "#d9d9d9", "conv": "#7aa6d6", "attn": "#f4a460", "mixer": "#8fbc8f", "head": "#d9d9d9"}
NAMES = {"conv": "MBConv-SE", "attn": "attention", "mixer": "mixer"}


def _human(value: int) -> str:
    """1234567 -> '1.23M'."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return str(value)


def _stage_text(stage: StagePlan) -> str:
    """Caption of a stage box."""
    s = stage.stage
    choices = {"conv": f"e{s.expansion} k{s.kernel}" + (f" se{s.se:g}" if s.se else ""),
               "attn": f"{s.heads} heads, MLP {s.mlp_hidden}" + (" +cls" if stage.cls else ""),
               "mixer": f"token MLP {s.token_dim}, MLP {s.mlp_hidden}"}[s.kind]
    entry = "stride 2" if s.stride == 2 else "stride 1"
    return (f"{stage.index + 1}: {NAMES[s.kind]} x{s.depth}\n{s.channels} ch, {stage.size[0]}x{stage.size[1]} "
            f"({stage.tokens} tok)\n{choices}\n{entry}")


def layout_rows(plan: NetworkPlan) -> list[tuple[str, str, int, int, int]]:
    """(kind, caption, channels, params, MACs) of the stem, each stage and the head."""
    stem = plan.stem
    kind = f"patch {plan.stem_stride}x{plan.stem_stride}" if stem.kind == "patch" else f"2 conv3x3 s{stem.stride}"
    stem_text = f"stem\n{kind}\n{plan.stem_channels} ch, {plan.stem_size[0]}x{plan.stem_size[1]}"
    rows = [("stem", stem_text, plan.stem_channels, *stem_cost(plan))]
    rows += [(s.kind, _stage_text(s), s.c_out, *stage_cost(s)) for s in plan.stages]
    pool = "class token" if plan.pool == "cls" else "average"
    rows.append(("head", f"head\nLN, {pool}\nFC {plan.c_last}->{plan.num_classes}", plan.c_last, *head_cost(plan)))
    return rows


def draw_layout(plan: NetworkPlan, title: str, path: str) -> None:
    """Write a PNG of the stage layout of ``plan`` to ``path``."""
    rows = layout_rows(plan)
    n = len(rows)
    fig, ax = new_figure(max(7.0, 2.1 * n), 5.2)
    ax.remove()
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3.2, 1.0]})
    top.set_axis_off()
    widest = max(channels for _, _, channels, _, _ in rows)
    for i, (kind, text, channels, params, _) in enumerate(rows):
        height = 0.35 + 0.65 * channels / widest
        top.add_patch(_box(i, height, COLORS[kind]))
        top.text(i, 0.0, text, ha="center", va="center", fontsize=7.5)
        top.text(i, -0.62, f"{_human(params)} params", ha="center", va="center", fontsize=7, color="0.3")
        if i:
            top.annotate("", xy=(i - 0.42, 0), xytext=(i - 0.58, 0), arrowprops=dict(arrowstyle="-|>", color="0.3"))
    top.set_xlim(-0.6, n - 0.4)
    top.set_ylim(-0.75, 0.75)
    _bars(bottom, [macs for *_, macs in rows], [kind for kind, *_ in rows])
    fig.suptitle(title, fontsize=9)
    save(fig, path)


def _box(x: float, height: float, color: str) -> Any:
    """A rounded box centred at (x, 0)."""
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch((x - 0.4, -height / 2), 0.8, height, boxstyle="round,pad=0.02", fc=color, ec="0.3")


def _bars(ax: Any, macs: list[int], kinds: list[str]) -> None:
    """Vertical bars of each part's share of the MACs, under its box."""
    total = max(1, sum(macs))
    shares = [100.0 * m / total for m in macs]
    ax.bar(range(len(macs)), shares, width=0.6, color=[COLORS[k] for k in kinds], edgecolor="0.3")
    for i, share in enumerate(shares):
        ax.text(i, share + 2, f"{share:.0f}%", ha="center", fontsize=7)
    ax.set_xlim(-0.6, len(macs) - 0.4)
    ax.set_ylim(0, max(shares) * 1.35 + 1)
    ax.set_xticks([])
    ax.set_ylabel(f"% of {_human(total)} MACs", fontsize=7.5)
    ax.tick_params(axis="y", labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
