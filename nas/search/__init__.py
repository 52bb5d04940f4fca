"""The search loop and what it is made of: the run spec, objectives and constraints, pruners,
progress, the summary of a run's ledger and the Pareto picture.

The package is also callable: ``nas.search(spec, ...)`` runs a search (:func:`nas.api.search`; ``nas``
makes this module object callable when it is imported, so ``nas.search.spec`` and friends stay as they are).
"""
