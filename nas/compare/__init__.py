"""``nas compare``: a controlled study of architectures under one protocol and matched compute.
"""
