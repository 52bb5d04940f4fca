"""Per-block latency lookup tables (torch-free): block keys, the table format and prediction, the correction fit.
"""
