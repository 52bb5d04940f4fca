"""nasforge core: search spaces' protocols, controllers, the search loop, executors and the run ledger.

Nothing in this package imports torch at module level; building models happens in
``search_spaces.<space>.build`` and training in ``evaluators``.
"""

__version__ = "0.1.0"


def load(path: str, weights: bool = True) -> "torch.nn.Module":  # type: ignore[name-defined]  # noqa: F821
    """Rebuild the ``torch.nn.Module`` described by an exported ``arch.json``.

    Args:
        path: an ``arch.json`` written by ``nas export`` (format ``nasforge-arch/1``).
        weights: load ``weights.safetensors`` from beside the file when it is there.

    Returns:
        The module in eval mode.

    Raises:
        ValueError: the file is malformed (the message names the field) or the weights do not fit.
        FileNotFoundError: no such file.
    """
    from evaluators.export import load_module  # torch is imported here, not with ``nas``

    return load_module(path, weights)
