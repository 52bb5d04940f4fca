"""Prediction cost of a latency table per new architecture, with this checkout's code (no timing of
networks: a table of unit entries, so only the walk and the lookups are timed).

Run in each checkout to compare, alternating, on one core::

    cd CHECKOUT && PYTHONPATH=$PWD OMP_NUM_THREADS=1 taskset -c 1 python tests/bench/bench_latency_predict.py \
        nasnet proxy onnxruntime 200
"""
import json, random, sys, time
from nas import registry
from nas.latency import table as T

space_name, preset, backend, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
space = registry.make_space(space_name, {"preset": preset})
blocks = {k: 1.0 for k in space.latency_universe()}
kw = {}
if "rules" in T.LatencyTable.__dataclass_fields__ and backend != "torch":
    from nas.latency.rules import RuntimeRules
    kw["rules"] = RuntimeRules(block=8).to_dict()
table = T.LatencyTable(space.name, space.preset, {}, space.default_task().input_shape, 10, backend, "cpu", 1, 1, {}, blocks, **kw)
rng = random.Random(12345)
genotypes = [space.sample(rng) for _ in range(n)]
table.predict(space, genotypes[0])  # imports
start = time.perf_counter()
for g in genotypes[1:]:
    table.predict(space, g)
print(json.dumps({"space": space_name, "preset": preset, "backend": backend, "us": (time.perf_counter() - start) / (n - 1) * 1e6}))
