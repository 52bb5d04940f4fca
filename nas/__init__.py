"""nasforge core: search spaces' protocols, controllers, the search loop, executors and the run ledger.

Nothing in this package imports torch at module level; building models happens in
``search_spaces.<space>.build`` and training in ``evaluators``.
"""

__version__ = "0.1.0"
