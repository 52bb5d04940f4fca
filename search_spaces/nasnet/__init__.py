"""NASNet-style cell space (Zoph et al. 2018) with the NASNet, AmoebaNet and DARTS op vocabularies."""
