"""Per-block latency lookup tables (torch-free): the table format and prediction (``table``) and the
correction fitted on whole networks (``fit``). Block keys, which spaces write, are :mod:`nas.block_keys`.
"""
