"""Randomly wired networks (Xie et al. 2019): stages whose wiring is drawn by a random graph generator."""
