"""Search spaces: one folder per space with genotype.py and space.py (torch-free) and build.py (torch)."""
