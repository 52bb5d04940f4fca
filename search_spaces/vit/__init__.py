"""Vision transformers, MLP-Mixers and conv/attention/mixer hybrids (ViT, Mixer, CoAtNet-like) as typed stages."""
