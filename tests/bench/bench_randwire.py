"""Randwire performance: build a ``small`` model (<= 1 s on CPU), generate and hash 1,000 genotypes (<= 5 s).

Run: ``.venv/bin/python tests/bench/bench_randwire.py``. Prints the figures and exits 1 if a target is missed.
Genotypes come from ``RandWireSpace.sample`` (every generator kind and parameter uniform: dense ER
graphs included, the heavy case); ids are computed with the ``arch_id`` cache cleared.
"""

from __future__ import annotations

import random
import statistics
import sys
import time

BUILD_TARGET_S = 1.0
GENERATE_HASH_TARGET_S = 5.0


def bench_build(repeats: int = 5) -> list[float]:
    """Seconds to build RandWire-WS(4, 0.75), C=78, small regime (torch already imported)."""
    import torch  # noqa: F401  (import cost is not part of building)

    from search_spaces.randwire.space import RandWireSpace

    space = RandWireSpace(preset="small")
    genotype = space.get_known("ws-4-0.75")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        space.build(genotype)
        times.append(time.perf_counter() - start)
    return times


def bench_generate_and_hash(count: int = 1000, seed: int = 0) -> tuple[float, float, int]:
    """(seconds to sample, seconds to hash, distinct ids) for ``count`` small-preset genotypes."""
    from nas import genotype as genotype_module
    from search_spaces.randwire.space import RandWireSpace

    space = RandWireSpace(preset="small")
    rng = random.Random(seed)
    start = time.perf_counter()
    genotypes = [space.sample(rng) for _ in range(count)]
    sampled = time.perf_counter()
    genotype_module._arch_id.cache_clear()
    ids = {g.arch_id for g in genotypes}
    return sampled - start, time.perf_counter() - sampled, len(ids)


def main() -> int:
    builds = bench_build()
    sample_s, hash_s, distinct = bench_generate_and_hash()
    build_s = statistics.median(builds)
    print(f"build small RandWire-WS(4,0.75) C=78: median {build_s:.3f} s, max {max(builds):.3f} s "
          f"over {len(builds)} builds (target <= {BUILD_TARGET_S} s)")
    print(f"generate + hash 1000 genotypes: {sample_s + hash_s:.2f} s (sample {sample_s:.2f} s, "
          f"arch_id {hash_s:.2f} s; {distinct} distinct ids) (target <= {GENERATE_HASH_TARGET_S} s)")
    ok = build_s <= BUILD_TARGET_S and sample_s + hash_s <= GENERATE_HASH_TARGET_S
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
