"""Which piece of a latency table carries its accuracy: the correction refitted without each piece on the
table's own fit networks, and checked on the validation samples of ``bench_latency.py accuracy --seeds``.

No timing is repeated: a row folder (``--out`` of ``accuracy``) holds the table (``lut.json``, with its fit
networks' build-time latencies) and one ``seed-N/samples.csv`` per validation seed (each sample's measured
latency, the table's prediction and the calibrated one). Steps, each adding one piece to the one before:

1. ``table + call cost``: the sum of the blocks' entries plus one fitted offset (the runtime's per-call cost);
2. ``+ scale, per-block``: the scale and per-block forms (averaged with the offset form as the table does);
3. ``+ per-kind costs``: a cost per counted block of each kind;
4. ``+ per-block-key costs``: a cost per block key besides (the shipped correction for eager torch);
5. ``+ kernel walk``: the graph runtime's kernel terms (ONNX Runtime rows; the shipped correction there);
6. ``+ calibration``: the predictions of step 5 (or 4) times each validation group's speed ratio.

Every step is reported uncalibrated and calibrated (times the same ratios), so that a piece's share can be
read apart from the machine's drift; ``best form only`` is the full correction without the averaging of
the candidates within 10% of the best leave-one-out error; ``walk, no per-block-key costs`` (graph
runtimes) is step 5 without step 4's key costs.

Run::

    .venv/bin/python tests/bench/bench_latency_ablation.py ROW [ROW ...]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Callable

from nas import registry
from nas.latency.fit import Correction, _plain_candidates, _term_candidates, choose_correction, is_key, ridge_fit
from nas.latency.table import LUT_FORMAT, LatencyTable, accuracy_stats

STEPS: list[tuple[str, Callable[[str], bool] | None]] = [
    ("+ scale, per-block", None),
    ("+ per-kind costs", lambda t: not is_key(t) and not t.startswith("^")),
    ("+ per-block-key costs", lambda t: not t.startswith("^")),
    ("+ kernel walk", lambda t: True),
]


def _predict(c: Correction, raw: float, live: int, counts: dict[str, int], floor: float) -> float:
    if not live:
        return floor
    return c.scale * raw + c.per_block * live + sum(c.kind_ms.get(t, 0.0) * n for t, n in counts.items()) + c.offset


def ablate(row: Path) -> dict[str, Any]:
    data = json.loads((row / "lut.json").read_text())
    if data["format"] == "nasforge-lut/1" and data["backend"] == "torch":  # eager rows built before rules were stored
        data["format"] = LUT_FORMAT
    table = LatencyTable.load_dict(data, row / "lut.json")
    space = registry.make_space(table.space, dict(table.space_options))
    task = table.task()

    def features(genotype: Any) -> tuple[float, int, dict[str, int]]:
        keys = table.network_keys(space, genotype, task)
        raw, live = table.parts(keys)
        return raw, live, table.term_counts(keys)

    fit = [features(space.from_dict(d)) for d in table.fit["genotypes"]]
    kept = [i for i, f in enumerate(fit) if f[1]]
    raw = [fit[i][0] for i in kept]
    live = [fit[i][1] for i in kept]
    measured = [table.fit["measured_ms"][i] for i in kept]
    graph = table.runtime_rules() is not None and any(t.startswith("^") for f in fit for t in f[2])
    corrections: list[tuple[str, Correction]] = []
    offset = ridge_fit([[1.0] * len(raw)], measured, base=raw)
    corrections.append(("table + call cost", Correction(offset=offset[0][0] if offset else 0.0)))
    for name, allow in STEPS:
        if name == "+ kernel walk" and not graph:
            continue
        terms = None if allow is None else [{t: n for t, n in fit[i][2].items() if allow(t)} for i in kept]
        corrections.append((name, choose_correction(raw, measured, live, terms)))
    if graph:  # the walk without the per-block-key costs: whether they still carry anything beside it
        terms = [{t: n for t, n in fit[i][2].items() if t.startswith("^") or not is_key(t)} for i in kept]
        corrections.append(("walk, no per-block-key costs", choose_correction(raw, measured, live, terms)))
    terms = [fit[i][2] for i in kept]
    candidates = _plain_candidates(raw, measured, live) + _term_candidates(raw, measured, terms)
    corrections.append(("best form only", min(candidates, key=lambda c: c[0])[1]))
    out: dict[str, Any] = {"row": str(row), "space": table.space, "preset": table.preset, "backend": table.backend,
                           "rules": table.rules, "seeds": {}}
    for folder in sorted(row.glob("seed-*")):
        samples = list(csv.DictReader((folder / "samples.csv").open()))
        truth = [float(s["measured_ms"]) for s in samples]
        # each validation group's speed ratio (one per group; rounded: the CSV's 6 digits must not break ties)
        ratios = [round(float(s["predicted_ms"]) / float(s["uncalibrated_ms"]), 4) for s in samples]
        feats = [features(space.from_json(s["genotype"])) for s in samples]
        steps: dict[str, Any] = {}
        for name, c in corrections:
            predicted = [_predict(c, *f, table.floor_ms) for f in feats]
            raw_stats = accuracy_stats(predicted, truth)
            cal_stats = accuracy_stats([p * r for p, r in zip(predicted, ratios)], truth)
            steps[name] = {"within_10pct": raw_stats["within_10pct"], "kendall_tau": round(raw_stats["kendall_tau"], 4),
                           "calibrated_within_10pct": cal_stats["within_10pct"],
                           "calibrated_kendall_tau": round(cal_stats["kendall_tau"], 4), "form": c.form}
        shipped = accuracy_stats([float(s["uncalibrated_ms"]) for s in samples], truth)
        steps["shipped table (check)"] = {"within_10pct": shipped["within_10pct"],
                                          "kendall_tau": round(shipped["kendall_tau"], 4)}
        out["seeds"][folder.name.removeprefix("seed-")] = steps
    return out


def main() -> int:
    for row in sys.argv[1:]:
        print(json.dumps(ablate(Path(row))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
