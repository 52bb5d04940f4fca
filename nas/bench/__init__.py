"""Benchmarks behind ``nas bench``: controllers on tabular benchmarks, loop and Ray overhead.
"""
