"""The run's ledger: its Optuna storage (store), journal batching, the shared-study protocol of
several drivers, and the one adapter that touches Optuna's internals (``_optuna``).
"""
