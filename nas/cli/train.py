"""``nas train``: full training of an exported architecture, checkpoints, resume and greedy soups.

Every recipe setting (:data:`evaluators.recipe.RECIPE`) is a flag (``--label-smoothing 0.1``) and a
key of the ``--config`` TOML file; flags win over the file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click

from nas import registry
from nas.cli.base import handle_errors, main, sigterm_as_interrupt
from nas.config import SpecError

RECIPE = registry.declared("recipe")  # the recipe's fields (torch-free), one flag each

_CLICK_TYPES = {int: int, float: float, str: str, bool: bool}


def _recipe_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """One ``--flag`` per recipe setting (default None: the file's or the recipe's value applies)."""
    for key, field in reversed(list(RECIPE.items())):
        flag = "--" + key.replace("_", "-")
        kind = click.Choice(list(field.choices)) if field.choices else _CLICK_TYPES[field.type]
        func = click.option(flag, key, type=kind, default=None, help=recipe_help(field))(func)
    return func


def recipe_help(field: Any) -> str:
    """A recipe flag's help: the field's own text and the recipe's default (an empty text default is
    left out: the field's help says what applies then)."""
    text = field.help[:1].upper() + field.help[1:] if field.help else ""
    shown = str(field.default).lower() if isinstance(field.default, bool) else field.default
    return f"{text}  [default: {shown}]" if field.default != "" else text


@main.command("train", short_help="Train an exported arch.json fully; score the test split once.")
@click.argument("arch", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: the arch file's folder).")
@click.option("--config", "config", type=click.Path(dir_okay=False),
              help="TOML file of recipe settings, keyed like the flags below (flags win; default: none).")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the output folder.")
@click.option("--stop-after", type=int, default=0, show_default=True,
              help="Stop after this many epochs, keeping a checkpoint for --resume (0: train to the end).")
@click.option("--soup", type=int, default=0, show_default=True,
              help="Then fine-tune K >= 2 copies and make a greedy model soup (0: no soup).")
@click.option("--soup-epochs", type=int, default=0, show_default=True,
              help="Fine-tuning epochs per soup ingredient (0: a fifth of --epochs).")
@click.option("--json", "as_json", is_flag=True, help="Print metrics.json at the end instead of a summary.")
@_recipe_options
@handle_errors
def train(arch: str, out: str | None, config: str | None, resume: bool, stop_after: int, soup: int,
          soup_epochs: int, as_json: bool, **flags: Any) -> None:
    """Train an exported architecture (arch.json) with the full recipe; score the test split once."""
    from nas.search.spec import read_toml

    sigterm_as_interrupt()
    options = read_toml(config) if config else {}
    if not isinstance(options, dict):
        raise SpecError(f"{config}: expected a table of recipe settings")
    options.update({k: v for k, v in flags.items() if v is not None})
    if soup < 0 or soup == 1:
        raise SpecError("--soup: expected 0 (no soup) or K >= 2 ingredients")
    from evaluators.fulltrain import FullTrainer

    folder = Path(out) if out else Path(arch).parent
    progress = _Progress()
    trainer = FullTrainer(arch, options, folder, on_epoch=progress, on_step=progress.step)
    try:
        metrics = trainer.run(resume=resume, stop_after=stop_after)
    finally:
        progress.close()
    if metrics is None:
        click.echo(f"stopped after epoch {trainer.epoch}/{trainer.recipe['epochs']}; continue with "
                   f"nas train {arch} --out {folder} --resume", err=True)
        return
    if soup:
        from evaluators.soup import soup_after_training

        metrics = soup_after_training(trainer, metrics, soup, soup_epochs)
    if as_json:
        click.echo(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2))
        return
    click.echo(f"test accuracy {metrics['test_accuracy']:.2f}% ({metrics['test_images']} images), "
               f"validation {metrics['valid_accuracy']:.2f}%, {metrics['epochs']} epochs in "
               f"{metrics['train_seconds']:.0f} s")
    if metrics.get("soup"):
        s = metrics["soup"]
        click.echo(f"soup (test): best ingredient {s['best_ingredient']['test_accuracy']:.2f}%, uniform "
                   f"{s['uniform_soup']['test_accuracy']:.2f}%, greedy {s['greedy_soup']['test_accuracy']:.2f}%")
    click.echo(f"wrote {folder}: weights.safetensors, metrics.json, curve.png, arch.json, MODEL_CARD.md")


class _Progress:
    """A progress bar (loss, accuracy, ETA) on a terminal; one line per epoch on stderr always."""

    def __init__(self) -> None:
        self.started = time.time()
        self.first: int | None = None
        self.bar: Any = None

    def step(self, step: int, total: int, loss: float, accuracy: float) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=step, unit="step", file=sys.stderr, leave=False)
        self.bar.update(step - self.bar.n)
        self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.2f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __call__(self, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.clear()
        if self.first is None:
            self.first = row["epoch"] - 1
        done = row["epoch"] - self.first
        eta = (time.time() - self.started) / done * (row["epochs"] - row["epoch"])
        click.echo(f"[{row['epoch']}/{row['epochs']}] loss {row['train_loss']:.4f} | train acc "
                   f"{row['train_accuracy']:.2f} | valid acc {row['valid_accuracy']:.2f} | lr {row['lr']:.4g} | "
                   f"ETA {_duration(eta)}", err=True)
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
