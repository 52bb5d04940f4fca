"""NAS-Bench-201 cell space (Dong & Yang, 2020): 6 edges of a 4-node DAG, 5 ops each."""
