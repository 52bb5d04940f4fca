"""The search loop and what it is made of: the run spec, objectives and constraints, pruners,
progress, the summary of a run's ledger and the Pareto picture.
"""
