"""What ``nas train`` leaves in its output folder besides the checkpoint and the weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from nas.export import archfile
from nas.export.card import CARD, checks_section, plot_curve, update_section


def write_outputs(trainer: Any, metrics: dict[str, Any]) -> None:
    """``metrics.json``, ``curve.png``, ``arch.json`` (beside the weights) and the card's training section."""
    out: Path = trainer.out
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    history = metrics["history"]
    plot_curve(out / "curve.png", {"train accuracy": [[r["epoch"], r["train_accuracy"]] for r in history],
                                   "validation accuracy": [[r["epoch"], r["valid_accuracy"]] for r in history]},
               "epoch", "accuracy (%)")
    data = json.loads(json.dumps(trainer.arch.data))
    splits = trainer.splits
    data["task"]["normalization"] = {"mean": list(splits.mean), "std": list(splits.std)}
    data["task"]["data"] = metrics["data"]
    data["weights"] = {"from": "nas train", "test_accuracy": metrics["test_accuracy"],
                       "valid_accuracy": metrics["valid_accuracy"], "epochs": metrics["epochs"],
                       "seed": trainer.recipe["seed"]}
    archfile.parse(data)
    arch_out = out / "arch.json"
    if arch_out.resolve() != trainer.arch_path.resolve():
        source_card = trainer.arch_path.parent / CARD
        if source_card.is_file() and not (out / CARD).is_file():
            shutil.copyfile(source_card, out / CARD)
        for picture in ("architecture.png", "search_curve.png"):
            if (trainer.arch_path.parent / picture).is_file():
                shutil.copyfile(trainer.arch_path.parent / picture, out / picture)
    arch_out.write_text(json.dumps(data, indent=2) + "\n")
    update_section(out / CARD, training_section(metrics))
    formats = [f for f in ("onnx", "pt2") if (out / f"model.{f}").is_file()]
    if formats:  # programs exported before training hold the old weights: export them again
        from evaluators.export import export_formats

        update_section(out / CARD, checks_section(export_formats(arch_out, out, formats)))


def training_section(metrics: dict[str, Any]) -> str:
    """The card's "Full training" section."""
    recipe = metrics["recipe"]
    settings = ", ".join(f"{k}={v}" for k, v in recipe.items() if k not in ("data_dir", "device", "threads"))
    lines = ["## Full training", "",
             f"Trained by `nas train` on {metrics['data']} for {metrics['epochs']} epochs ({metrics['steps']} steps, "
             f"{metrics['train_seconds']:.0f} s on {metrics['device']}).", "",
             "| split | accuracy (%) |", "| --- | --- |",
             f"| test ({metrics['test_images']} images, scored once at the end) | {metrics['test_accuracy']:.2f} |",
             f"| validation (last epoch) | {metrics['valid_accuracy']:.2f} |", "",
             "![full-training curve](curve.png)", "", f"Recipe: {settings}.", "",
             "`weights.safetensors` holds the trained weights; `nas.load(\"arch.json\")` in this folder loads them."]
    soup = metrics.get("soup")
    if soup:
        lines += ["", "### Greedy model soup", "", "| model | validation | test |", "| --- | --- | --- |"]
        for name in ("best_ingredient", "uniform_soup", "greedy_soup"):
            lines.append(f"| {name.replace('_', ' ')} | {soup[name]['valid_accuracy']:.2f} | "
                         f"{soup[name]['test_accuracy']:.2f} |")
        lines.append(f"\nGreedy soup: ingredients {soup['greedy_members']} of {len(soup['ingredients'])}.")
    return "\n".join(lines)
