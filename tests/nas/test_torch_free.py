"""The search core and the spaces' genotype/space modules never import torch."""

from __future__ import annotations

import subprocess
import sys

from nas import registry
from tests.conftest import ROOT, need

CORE = ["nas", "nas.cli", "nas.cli.base", "nas.config", "nas.genotype", "nas.space", "nas.registry", "nas.search.spec", "nas.search.loop",
        "nas.api.runner", "nas.api", "nas.api.launch", "nas.api.run", "evaluators.function_options", "nas.latency.rules",
        "nas.latency.table", "nas.latency.fit", "search_spaces.graph_kernels", "nas.search.summary", "nas.ledger.store", "nas.bench.tabular", "nas.evaluator", "nas.search.progress", "nas.search.pruners",
        "nas.executors", "nas.executors.inline", "nas.executors.ray", "nas.controllers",
        "nas.controllers.evolution", "nas.controllers.local", "nas.controllers.guided",
        "nas.controllers.surrogate", "nas.controllers.optuna_samplers", "nas.controllers.grid", "nas.search.objectives", "evaluators.tabular",
        "evaluators.synthetic", "nas.report.view", "nas.report.sections", "nas.report.plots", "nas.report.html",
        "nas.cli.report",
        "nas.export.exporter", "nas.export.archfile", "nas.export.card", "nas.export.weights", "nas.cli.export",
        "nas.cli.train", "evaluators.recipe",
        "nas.compare.study", "nas.compare.stats", "nas.compare.spec",
        "nas.compare.plan", "nas.compare.outputs", "nas.cli.compare", "search_spaces.nasnet.baselines"]


def space_modules() -> list[str]:
    modules = []
    for name in registry.names("spaces"):
        package = registry.BUILTIN["spaces"][name].split(":")[0].rsplit(".", 1)[0]
        modules += [f"{package}.genotype", f"{package}.space"]
    return modules


def test_core_and_space_modules_import_without_torch():
    modules = CORE + space_modules()
    code = ("import sys, importlib\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "from nas import registry\n"
            "for n in registry.names('spaces'): registry.make_space(n)\n"
            "loaded = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]\n"
            "print('TORCH' if loaded else 'CLEAN')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "CLEAN"


def test_reading_a_training_run_spec_leaves_torch_unloaded():
    # show, report and export validate the spec through the train evaluator's torch-free declaration
    from pathlib import Path

    from evaluators.data import FASHION_DIR

    need(any(Path(FASHION_DIR).glob("train-images-idx3-ubyte*")), f"Fashion-MNIST not installed at {FASHION_DIR}")
    code = ("import sys\n"
            "from nas.search.spec import load_spec\n"
            "from nas.evaluator import EvaluatorSpec\n"
            "spec = load_spec('runs/quickstart.toml')\n"
            "assert 'accuracy' in spec.metrics and spec.evaluator['valid_limit'] == 10000, spec.evaluator\n"
            "spec.evaluator_spec().load_shared()\n"
            "print('TORCH' if 'torch' in sys.modules else 'CLEAN')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "CLEAN"
