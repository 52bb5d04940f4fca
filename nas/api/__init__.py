"""Running searches into run folders: what ``nas search``/``nas resume`` and the Python API call.
"""
