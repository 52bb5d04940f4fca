"""Bring your own training loop: nasforge proposes NAS-Bench-201 cells, your function trains them.

    python examples/own_training.py                    # inline, about ten seconds on a laptop
    python examples/own_training.py --executor ray     # the same on Ray workers

The function gets the network built from each candidate (``torch.nn.Module``), the per-trial budget,
a ``report(step, value)`` callback (True: the pruner stops the trial) and the ``[evaluator]`` table's
other keys; it returns the metrics. Here it trains on scikit-learn's digits (8x8 grey images).

From a TOML spec the same evaluator reads::

    [evaluator]
    name = "function"
    function = "own_training:train"   # package.module:callable, found beside the spec or on sys.path
    lr = 0.01                         # yours: passed to the function in `options`
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

import nas

SPEC = {
    "run": {"name": "own-training", "budget": 3, "seed": 0},
    "space": {"name": "nb201", "preset": "proxy"},  # tiny cells for 1x8x8 inputs, 10 classes
    "controller": {"name": "random"},
    "evaluator": {"lr": 0.01, "batch_size": 64, "budget": {"epochs": 2}},  # the function's options
    "objectives": [{"metric": "accuracy", "direction": "maximize"}],
}


_DIGITS: list[torch.Tensor] = []  # loaded once per process (each Ray worker loads its own)


def digits() -> list[torch.Tensor]:
    """scikit-learn's digits as tensors: 1437 training and 360 validation images, (N, 1, 8, 8)."""
    if _DIGITS:
        return _DIGITS
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    _DIGITS.extend((x[360:], y[360:], x[:360], y[:360]))
    return _DIGITS


def train(model: torch.nn.Module, budget: dict, report, options: dict) -> dict[str, float]:
    """Your loop: Adam for ``budget["epochs"]`` epochs; validation accuracy (%) after each epoch."""
    x_train, y_train, x_valid, y_valid = digits()
    generator = torch.Generator().manual_seed(budget["seed"])
    optimizer = torch.optim.Adam(model.parameters(), lr=options["lr"])
    accuracy = 0.0
    for epoch in range(1, int(budget["epochs"]) + 1):
        model.train()
        for batch in torch.randperm(len(y_train), generator=generator).split(options["batch_size"]):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = 100.0 * (model(x_valid).argmax(1) == y_valid).float().mean().item()
        if report(epoch, accuracy):  # the pruner stops this candidate
            break
    return {"accuracy": accuracy}


def main(executor: str = "inline", out: str = "runs/own-training") -> nas.Run:
    """Search with :func:`train` as the evaluator and print the best candidate."""
    run = nas.search(SPEC, evaluator=train, out=out, executor=executor, overwrite=True)
    best = run.best
    print(f"best of {len(run.trials())}: trial #{best['number']}, accuracy {best['metrics']['accuracy']:.1f}%, "
          f"{best['metrics']['params'] / 1e3:.1f}k params, {best['label']}")
    return run


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", choices=("inline", "ray"), default="inline")
    parser.add_argument("--out", default="runs/own-training", help="run folder (replaced)")
    arguments = parser.parse_args()
    main(arguments.executor, arguments.out)
