"""Evaluators: tabular benchmarks, synthetic load, and (torch) brief training, latency and cost."""
