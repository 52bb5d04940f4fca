"""Ray for a search whose evaluator runs the user's own code: that code reaches every worker through
Ray's runtime environment (``py_modules``), on a local instance as on a cluster, without copying.

Ray takes local folders in a runtime environment only when the job starts (``ray.init``), not per
actor. So when the evaluator names code of the user's (its declaration's ``py_modules(options)``,
e.g. the function evaluator's module) and the spec runs on Ray, the runner starts Ray here first,
with that runtime environment (the executor then joins it), and stops it after the search. A Ray
the user started already keeps its own runtime environment: on one machine the workers import from
the same files; on a cluster the user's ``ray.init(runtime_env=...)`` must carry them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from nas import registry
from nas.config import SpecError
from nas.search.spec import RunSpec

log = logging.getLogger(__name__)


@contextlib.contextmanager
def user_code_on_ray(spec: RunSpec) -> Iterator[None]:
    """Within: Ray started with the evaluator's user code in its runtime environment, when the spec
    runs on Ray, its evaluator has such code and Ray is not running yet; otherwise nothing changes."""
    modules = _user_code(spec)
    if not modules:
        yield
        return
    import ray

    if ray.is_initialized():
        log.info("ray: already running; workers on other nodes import %s only if its runtime_env ships them",
                 ", ".join(modules))
        yield
        return
    from nas.executors._ray_cluster import _connect, _first_line

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        _connect(spec.executor["address"], spec.executor["log_to_driver"], {"py_modules": modules})
    except (ConnectionError, TimeoutError, ValueError) as err:
        raise SpecError(f"evaluator.function: cannot start Ray with the evaluator's code ({', '.join(modules)}): "
                        f"{_first_line(err)}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _user_code(spec: RunSpec) -> list[str]:
    """Folders and files of the user's code that the evaluator's workers import (``SpecError`` when
    they do not import here)."""
    if spec.executor["name"] != "ray":
        return []
    declaration = registry.lookup("evaluators", spec.evaluator["name"], "evaluator.name", declaration=True)
    code = getattr(declaration, "py_modules", None)
    return list(code(spec.evaluator_spec().options)) if code is not None else []
