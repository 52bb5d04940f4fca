"""Training benchmarks behind ``nas bench train`` and ``nas bench fidelity`` (torch side).

* Loop efficiency: the evaluator's training images/s against a minimal hand-written PyTorch loop on
  the same model, data and batch size, alternated round by round in one process.
* Proxy fidelity: Kendall's tau between the validation accuracy after the search budget and after
  ``factor`` times longer training, over sampled architectures, and the cost ratio of the two.
"""

from __future__ import annotations

import copy
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch
import torch.nn.functional as F

from evaluators.train import TrainEvaluator
from nas import registry
from nas.evaluator import COMPLETE, Job, NullReporter, run_job
from nas.latency.table import kendall_tau


def minimal_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, steps: int,
                 lr: float, generator: torch.Generator, optimizer_name: str = "sgd") -> float:
    """Images/s of the plainest loop: shuffled batches, SGD (or AdamW, as the evaluator uses), cross-entropy,
    backward, step."""
    if optimizer_name == "adamw":
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=3e-4)
    model.train()
    order = torch.randperm(len(x), generator=generator)
    started = time.perf_counter()
    for i in range(steps):
        index = order[(i * batch) % (len(x) - batch + 1):][:batch]
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - started)


def run_train_efficiency(space: str = "nasnet", preset: str = "proxy", data: str = "digits", batch: int = 64,
                         steps: int = 40, rounds: int = 5, seed: int = 0, threads: int = 1) -> dict[str, Any]:
    """Median images/s of the evaluator and of the minimal loop, alternated; and their ratio."""
    torch.set_num_threads(threads)
    space_obj = registry.make_space(space, {"preset": preset})
    evaluator = TrainEvaluator(space_obj, {"data": data, "batch_size": batch, "threads": threads})
    genotype = space_obj.sample(random.Random(seed))
    torch.manual_seed(seed)
    initial = space_obj.build(genotype, evaluator.task)
    x, y = evaluator.data.x_train, evaluator.data.y_train
    ours, plain = [], []
    for r in range(rounds):
        result = run_job(evaluator, Job(r, r, genotype.to_json(), genotype.arch_id,
                                        {"epochs": 0, "steps": steps}, seed), NullReporter())
        assert result.state == COMPLETE, result.error
        ours.append(result.metrics["images_per_second"])
        plain.append(minimal_loop(copy.deepcopy(initial), x, y, batch, steps, evaluator.options["lr"],
                                  torch.Generator().manual_seed(seed + r), evaluator.options["optimizer"]))
    return {"space": space, "preset": preset, "data": data, "batch": batch, "steps": steps, "rounds": rounds,
            "threads": threads, "optimizer": evaluator.options["optimizer"], "device": str(evaluator.device), "evaluator_images_per_s": statistics.median(ours),
            "minimal_images_per_s": statistics.median(plain),
            "ratio": statistics.median(ours) / statistics.median(plain)}


def _fidelity_job(args: tuple) -> list[tuple[int, float, float, float, float]]:
    """Train each of ``indices`` at both budgets; returns (index, acc_short, s_short, acc_long, s_long)."""
    space_name, options, space_options, epochs, factor, indices, seed = args
    torch.set_num_threads(1)
    space = registry.make_space(space_name, space_options)
    evaluator = TrainEvaluator(space, options)
    rng = random.Random(seed)
    genotypes = [space.sample(rng) for _ in range(max(indices) + 1)]
    out = []
    for i in indices:
        g = genotypes[i]
        runs = []
        for budget in (epochs, epochs * factor):
            result = run_job(evaluator, Job(i, i, g.to_json(), g.arch_id, {"epochs": budget}, seed), NullReporter())
            runs += [result.metrics.get("accuracy", float("nan")), result.info["seconds"]]
        out.append((i, *runs))
    return out


def run_fidelity(space: str = "nasnet", preset: str = "proxy", data: str = "fashion-mnist", archs: int = 30,
                 epochs: float = 1.0, factor: float = 4.0, train_limit: int = 5000, valid_limit: int = 2000,
                 seed: int = 0, jobs: int = 0, size: int = 0) -> dict[str, Any]:
    """Rank agreement of short (search) and long training over sampled architectures."""
    options = {"data": data, "train_limit": train_limit, "valid_limit": valid_limit, "batch_size": 64,
               "threads": 1, "size": size}
    jobs = jobs or os.cpu_count() or 1
    chunks = [list(range(archs))[k::jobs] for k in range(jobs)]
    work = [(space, options, {"preset": preset}, epochs, factor, chunk, seed) for chunk in chunks if chunk]
    with ProcessPoolExecutor(max_workers=len(work)) as pool:
        rows = sorted(r for part in pool.map(_fidelity_job, work) for r in part)
    short, long_ = [r[1] for r in rows], [r[3] for r in rows]
    return {"space": space, "preset": preset, "data": data, "archs": archs, "epochs": epochs, "factor": factor,
            "train_limit": train_limit, "valid_limit": valid_limit, "size": size,
            "kendall_tau": round(kendall_tau(short, long_), 3),
            "cost_ratio": round(sum(r[2] for r in rows) / sum(r[4] for r in rows), 3),
            "short": short, "long": long_}
