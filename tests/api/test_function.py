"""The function evaluator: your training function gets the built network, the budget, report() and its
options; its failures are the trials' failures; it is found by name (TOML) or passed from Python; on Ray
a passed function is pickled and a named module travels in Ray's runtime environment."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import optuna
import pytest

import nas
from nas.config import SpecError
from tests.api import loaded_after
from tests.conftest import run_nas, write_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

BEHAVIOURS = '''
import math

import torch

CALLS = []


def fit(model, budget, report, options):
    """The i-th call does options["plan"][i]."""
    plan = options["plan"][len(CALLS)]
    CALLS.append(plan)
    out = model(torch.zeros(2, *options["probe"]))
    if plan == "raise":
        raise ValueError("planned failure")
    results = {"nan": {"accuracy": math.nan}, "empty": {}, "text": {"accuracy": "high"},
               "missing": {"loss": 1.0}, "list": [1.0]}
    if plan in results:
        return results[plan]
    for step in (1, 2, 3):
        if report(step, options["start"] - 10.0 * len(CALLS) + step):
            break
    return {"accuracy": 50.0, "outputs": out.shape[1], "epochs": budget["epochs"], "seed": budget["seed"],
            "bonus": options["bonus"], "float32": torch.tensor(1.5)}


NOT_CALLABLE = 3
'''


def user_module(folder: Path, source: str = BEHAVIOURS) -> str:
    """Write a module of a name no other test uses into ``folder``; its name."""
    name = f"user_{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source)
    return name


def spec(name: str, function: str, trials: int = 6, **evaluator) -> dict:
    return {"run": {"name": name, "budget": trials, "seed": 0, "max_failures": 100},
            "space": {"name": "nb201", "preset": "proxy"}, "controller": {"name": "random"},
            "evaluator": {"name": "function", "function": function, **evaluator},
            "objectives": [{"metric": "accuracy"}]}


def test_the_function_gets_network_budget_report_and_options_and_its_failures_are_trials(tmp_path):
    module = user_module(tmp_path)
    plan = ["raise", "nan", "empty", "text", "missing", "list", "ok"]
    path = write_spec(tmp_path / "f.toml", spec("f", f"{module}:fit", trials=7, plan=plan, start=100.0, bonus=2,
                                                 classes=3, input_shape=[3, 8, 8], probe=[3, 8, 8],
                                                 metrics=["accuracy", "outputs"],
                                                 budget={"epochs": 2.5}))
    run = nas.search(path, progress=False)  # the module is found beside the spec, not on sys.path
    assert run.outcome.reason == "budget"
    errors = [t["info"].get("error", "") for t in run.trials()]
    assert [t["state"] for t in run.trials()] == ["failed"] * 6 + ["complete"]
    assert errors[0] == "ValueError: planned failure" and "planned failure" in run.trials()[0]["info"]["traceback"]
    assert errors[1] == ("fit returned a non-finite 'accuracy': nan; fit returned no 'outputs' (evaluator.metrics: "
                         "accuracy, outputs; it returned accuracy)")
    assert errors[2].startswith("fit returned no metrics (an empty dict)")
    assert errors[3].startswith("fit returned a non-numeric 'accuracy': 'high'; ")
    assert errors[4].startswith("fit returned no 'accuracy', 'outputs' (evaluator.metrics: accuracy, outputs")
    assert errors[5].startswith("fit returned no metrics (list)")
    metrics = run.best["metrics"]
    assert metrics["outputs"] == 3 and metrics["epochs"] == 2.5 and metrics["seed"] == 0  # for 3x8x8, 3 classes
    assert metrics["bonus"] == 2 and metrics["float32"] == 1.5  # own options passed through; tensors as numbers
    assert metrics["accuracy"] == 50.0 and "params" in metrics
    stored = (run.path / "spec.toml").read_text()
    assert f'path = "{tmp_path}"' in stored and "bonus = 2" in stored  # nas resume finds the module again


def test_report_answers_true_when_the_pruner_stops_the_trial(tmp_path):
    module = user_module(tmp_path)
    data = {**spec("p", f"{module}:fit", trials=2, plan=["ok", "ok"], start=100.0, bonus=0, probe=[1, 8, 8]),
            "pruner": {"name": "median", "n_startup_trials": 0, "n_warmup_steps": 0}}
    run = nas.search(data, out=tmp_path / "p", progress=False, **{"evaluator.path": str(tmp_path)})
    first, second = run.trials()
    assert (first["state"], second["state"]) == ("complete", "pruned")
    assert second["info"]["pruned_at"] == 1 and second["metrics"]["accuracy"] == 50.0
    assert run.study.trials[0].intermediate_values == {1: 91.0, 2: 92.0, 3: 93.0}


def test_a_function_passed_from_python_runs_and_resumes(tmp_path):
    seen = []

    def fit(model, budget, report, options):
        seen.append((type(model).__name__, budget["epochs"], options))
        return {"accuracy": 10.0 + len(seen)}

    data = spec("py", "replaced", trials=2, lr=0.1)
    del data["evaluator"]["name"], data["evaluator"]["function"]
    run = nas.search(data, evaluator=fit, out=tmp_path / "py", progress=False)
    assert seen == [("NB201Network", 1.0, {"lr": 0.1})] * 2 and run.best["metrics"]["accuracy"] == 12.0
    stored = (run.path / "spec.toml").read_text()
    assert 'function = "tests.api.test_function:test_a_function_passed_from_python_runs_and_resumes.<locals>.fit"' \
        in stored
    with pytest.raises(SpecError, match=r"^evaluator.function: cannot import .*nas.resume\(run_dir, evaluator=function\)"):
        nas.resume(run.path, budget=3)
    assert nas.resume(run.path, evaluator=fit, budget=3, progress=False).outcome.evaluated == 3 and len(seen) == 3


def test_a_function_that_does_not_import_is_bad_input(tmp_path):
    module, broken = user_module(tmp_path), user_module(tmp_path, "undefined_name + 1\n")
    for function, message in [(f"{module}:nope", f"cannot import '{module}:nope' (AttributeError"),
                              (f"{broken}:fit", f"cannot import '{broken}:fit' (NameError"),  # raised by the module
                              (f"{module}:NOT_CALLABLE", f"'{module}:NOT_CALLABLE' is a int, not a callable"),
                              ("no_such_module_xyz:fit", "cannot import 'no_such_module_xyz:fit' (ModuleNotFoundError")]:
        with pytest.raises(SpecError, match="^evaluator.function: " + message.replace("(", r"\(")):
            nas.search(spec("bad", function), out=tmp_path / "bad", **{"evaluator.path": str(tmp_path)})
        assert not (tmp_path / "bad").exists()
    path = write_spec(tmp_path / "cli.toml", spec("cli", "no_such_module_xyz:fit"))
    proc = run_nas("search", str(path))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "nas: error: evaluator.function: cannot import 'no_such_module_xyz:fit' (ModuleNotFoundError: "
        "No module named 'no_such_module_xyz')"]
    assert not (tmp_path / "cli").exists()


def test_validating_a_function_spec_imports_neither_torch_nor_the_function(tmp_path):
    module = user_module(tmp_path)
    path = write_spec(tmp_path / "v.toml", spec("v", f"{module}:fit"))
    code = (f"from nas.search.spec import load_spec\nspec = load_spec({str(path)!r})\n"
            f"print(spec.metrics, spec.evaluator['path'] == {str(tmp_path)!r})")
    assert loaded_after(code, ("torch", module), cwd="/") == "('accuracy',) True\n[]"


# ----- on Ray ----------------------------------------------------------------------------------------
@pytest.mark.xdist_group("ray")
def test_a_function_passed_from_python_is_pickled_to_ray_workers(tmp_path, ray_session):
    offset = 7.0  # captured: the closure travels by value

    def fit(model, budget, report, options):
        report(1, offset)
        return {"accuracy": offset + sum(p.numel() for p in model.parameters()) % 10, "pid": os.getpid()}

    data = spec("ray-py", "replaced", trials=4)
    run = nas.search(data, evaluator=fit, out=tmp_path / "ray-py", executor="ray", workers=2, progress=False)
    assert [t["state"] for t in run.trials()] == ["complete"] * 4
    assert {t["metrics"]["pid"] for t in run.trials()}.isdisjoint({os.getpid()})  # on the workers
    assert all(t["metrics"]["accuracy"] >= offset for t in run.trials())


WHERE = '''
def fit(model, budget, report, options):
    """1.0 when this module was imported from Ray's runtime environment, not from the user's folder."""
    return {"accuracy": 1.0 if "runtime_resources" in __file__ else 0.0}
'''


@pytest.mark.xdist_group("ray")
def test_a_named_module_reaches_ray_workers_through_the_runtime_environment(tmp_path):
    package = f"userpkg_{uuid.uuid4().hex[:8]}"
    user_module(tmp_path / package, "")
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "train.py").write_text(WHERE)
    path = write_spec(tmp_path / "ray.toml", spec("ray", f"{package}.train:fit", trials=2))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # neither the driver's nor the workers' folder holds the package
    proc = run_nas("search", str(path), "--executor", "ray", "--workers", "2", "--json", cwd=elsewhere, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["states"]["complete"] == 2 and summary["best"]["metrics"]["accuracy"] == 1.0
