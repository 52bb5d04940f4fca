"""``nas report``: one self-contained HTML page of a run (or of a comparison), read-only.
"""
