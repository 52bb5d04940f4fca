"""After the search: ``arch.json`` (archfile), exported folders, model cards, kept weights.
"""
