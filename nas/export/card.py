"""``MODEL_CARD.md``: what an exported architecture is, how it was found, measured and checked.

Written by ``nas export`` from the arch data (and the export checks, the lineage and the spec);
``nas train`` adds or replaces the "Full training" section. Pictures: ``architecture.png`` (the
space's drawing) and ``curve.png`` (the learning curve of the search's brief training).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CARD = "MODEL_CARD.md"
TRAIN_HEADING = "## Full training"
CHECKS_HEADING = "## Exported files and their checks"
SEARCH_CURVE = "search_curve.png"


def write_card(folder: Path, data: dict[str, Any], checks: dict[str, Any], lineage_of: list[dict[str, Any]],
               curve: list[list[float]], spec_text: str) -> list[str]:
    """Write the card and its pictures into ``folder``; return the file names written."""
    written = []
    if _draw_architecture(folder / "architecture.png", data):
        written.append("architecture.png")
    if curve and plot_curve(folder / SEARCH_CURVE, {"validation accuracy (brief training)": curve}, "epoch",
                            "accuracy (%)"):
        written.append(SEARCH_CURVE)
    sections = [_header(data, "architecture.png" in written), _size(data),
                _metrics(data, SEARCH_CURVE in written), _training(data), _search(data),
                _lineage(lineage_of), checks_section(checks), _usage(data), _spec(spec_text), _versions(data)]
    (folder / CARD).write_text("\n\n".join(s for s in sections if s) + "\n")
    return [*written, CARD]


def update_section(card: Path, section: str) -> None:
    """Replace (or add) the card's section whose heading is the first line of ``section``."""
    heading = section.strip().splitlines()[0]
    text = card.read_text() if card.is_file() else "# Model card\n"
    head, _, rest = text.partition(heading + "\n")
    tail = ""
    if rest:
        after = rest.find("\n## ")
        tail = rest[after + 1:] if after >= 0 else ""
    card.write_text(head.rstrip() + "\n\n" + section.strip() + "\n\n" + tail)


def plot_curve(path: Path, series: dict[str, list[list[float]]], xlabel: str, ylabel: str) -> bool:
    """Line plot of named ``[[x, y], ...]`` series to a PNG; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axis = plt.subplots(figsize=(5, 3.2), dpi=110)
    for name, points in series.items():
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=name)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def _draw_architecture(path: Path, data: dict[str, Any]) -> bool:
    from nas.export import archfile

    arch = archfile.parse(data)
    try:
        arch.space.draw(arch.genotype, str(path))
        return True
    except NotImplementedError:
        return False
    except Exception:  # a picture is a nicety
        log.warning("could not draw the architecture", exc_info=True)
        return False


def _header(data: dict[str, Any], picture: bool) -> str:
    from nas.export import archfile

    arch = archfile.parse(data)
    options = ", ".join(f"{k}={v}" for k, v in data["space"]["options"].items())
    lines = [f"# Model card: {data['space']['name']} architecture {data['arch_id']}", "",
             "## Architecture", "", f"Space `{data['space']['name']}` ({options}).", "",
             "```", arch.space.label(arch.genotype), "```"]
    label = arch.space.label(arch.genotype)
    details = {k: v for k, v in arch.space.details(arch.genotype).items() if v != label}
    if details:
        lines += ["", "Details: " + ", ".join(f"{k} `{v}`" for k, v in details.items())]
    if picture:
        lines += ["", "![the architecture](architecture.png)"]
    return "\n".join(lines)


def _size(data: dict[str, Any]) -> str:
    task, cost = data["task"], data["cost"]
    norm = task.get("normalization")
    norm_text = (f"mean {_floats(norm['mean'])}, std {_floats(norm['std'])}" if norm else "none recorded")
    return "\n".join(["## Size and input", "",
                      f"- parameters: {cost['params']:,} (trainable, auxiliary head excluded)",
                      f"- FLOPs: {cost['flops']:,} multiply-accumulates per image",
                      f"- input: {tuple(task['input_shape'])} (C, H, W), {task['num_classes']} classes",
                      f"- normalisation: subtract the mean and divide by the std per channel: {norm_text}"])


def _metrics(data: dict[str, Any], curve: bool) -> str:
    metrics = data["metrics"]
    lines = ["## Measured during the search", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.6g} |" for k, v in metrics.items()]
    lines += ["", "Accuracy is on the validation split; the test split was not looked at."]
    if curve:
        lines += ["", f"![learning curve of the brief training]({SEARCH_CURVE})"]
    return "\n".join(lines)


def _training(data: dict[str, Any]) -> str:
    training = data.get("training") or {}
    if not training:
        return ""
    budget = training.get("budget", {})
    task = data["task"]
    data_set = task.get("data") or "(none: a tabular or synthetic evaluator)"
    size = f", downsampled to {task['size']}x{task['size']}" if task.get("size") else ""
    settings = ", ".join(f"{k}={v}" for k, v in training.items() if k != "budget")
    return "\n".join(["## Data and training budget", "", f"- data set: {data_set}{size}",
                      f"- budget per candidate: {', '.join(f'{k}={v}' for k, v in budget.items()) or '-'}",
                      f"- settings: {settings}"])


def _search(data: dict[str, Any]) -> str:
    source = data.get("source") or {}
    if not source:
        return ""
    objectives = ", ".join(f"{o['metric']} ({o['direction']})" for o in source.get("objectives", []))
    return "\n".join(["## The search that found it", "",
                      f"- run `{source.get('run')}` in `{source.get('run_dir')}`",
                      f"- space `{data['space']['name']}`, controller `{source.get('controller')}`, "
                      f"evaluator `{source.get('evaluator')}`, objectives {objectives}",
                      f"- trial #{source.get('trial')}, rank {source.get('rank')} among the completed trials"])


def _lineage(chain: list[dict[str, Any]]) -> str:
    lines = ["## Lineage", ""]
    if not chain:
        return "\n".join(lines + ["No parents recorded: a random sample (or a controller that records none)."])
    lines += ["Ancestors through the ledger's `nas:parents`, nearest first:", "",
              "| arch_id | trial | values | its parents |", "| --- | --- | --- | --- |"]
    for entry in chain:
        values = ", ".join(f"{k}={v:.4g}" for k, v in entry.get("values", {}).items()) or "-"
        trial = f"#{entry['trial']}" if entry["trial"] is not None else "(not in the ledger)"
        lines.append(f"| {entry['arch_id']} | {trial} | {values} | {', '.join(entry['parents']) or '-'} |")
    return "\n".join(lines)


def checks_section(checks: dict[str, Any]) -> str:
    """The card's section on the exported files and their parity checks."""
    if not checks:
        return ""
    lines = [CHECKS_HEADING, ""]
    for name, check in checks.items():
        verdict = "passed" if check["passed"] else "FAILED"
        extra = f", opset {check['opset']}, {check['runtime']}" if name == "onnx" else ""
        extra += ", dynamic batch" if check.get("dynamic_batch") else ""
        lines.append(f"- `{check['file']}`{extra}: max abs difference to eager PyTorch "
                     f"{check['max_abs']:.3g} on {check['batch']} random inputs (outputs up to "
                     f"{check['output_scale']:.3g}; tolerance {check['tolerance']:g}): {verdict}")
    return "\n".join(lines)


def _usage(data: dict[str, Any]) -> str:
    return "\n".join(["## Use", "", "```python", "import nas", "model = nas.load(\"arch.json\")  "
                      "# the nn.Module, with weights.safetensors from beside it when present", "```",
                      "", f"Train it fully: `{train_command(data)}`.{_train_note(data)}"])


def train_command(data: dict[str, Any]) -> str:
    """The ``nas train`` command line that trains this architecture at full size: the images as the
    data set has them (``--size 0``, not the search's downsampled proxy size), from the search's own
    data folder, on a data set (one must be named when the search had none)."""
    task, training = data["task"], data.get("training") or {}
    words = ["nas train arch.json"]
    if not task.get("data"):
        words.append("--data DATA")  # a tabular or synthetic search: no images to train on recorded
    elif training.get("data_dir"):
        words.append(f"--data-dir {_quoted(str(training['data_dir']))}")
    if task.get("size"):
        words.append("--size 0")
    return " ".join(words + ["--epochs 50"])


def _train_note(data: dict[str, Any]) -> str:
    """Why the command has the options it has (the search's proxy settings it leaves behind)."""
    task = data["task"]
    notes = []
    if task.get("size"):
        notes.append(f" `--size 0` trains on full-size images; the search downsampled them to "
                     f"{task['size']}x{task['size']} (`--size -1` keeps that).")
    if not task.get("data"):
        notes.append(" The search trained on no images: name a data set with `--data` "
                     "(digits, fashion-mnist, cifar10, ...).")
    return "".join(notes) + " `nas train --help` lists the recipe's other settings."


def _quoted(text: str) -> str:
    """``text`` as one shell word."""
    import shlex

    return shlex.quote(text)


def _spec(spec_text: str) -> str:
    return "\n".join(["## The run spec", "", "```toml", spec_text.strip(), "```"]) if spec_text else ""


def _versions(data: dict[str, Any]) -> str:
    return "## Versions\n\n" + json.dumps(data.get("versions", {}))


def _floats(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"
