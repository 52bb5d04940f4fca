"""The Python API: :func:`search`, :func:`resume` and :func:`open_run` (``nas.search``, ``nas.resume``,
``nas.open``) and the :class:`Run` they return; ``nas search``/``resume``/``show`` are thin layers over it.

Modules: :mod:`~nas.api.launch` (the functions), :mod:`~nas.api.run` (:class:`Run`),
:mod:`~nas.api.inputs` (specs and overrides), :mod:`~nas.api.runner` (run folders: start, resume, outputs).
"""

from nas.api.launch import open_run, resume, search
from nas.api.run import Run

__all__ = ["Run", "open_run", "resume", "search"]
