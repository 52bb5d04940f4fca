"""EfficientNet compound-scaling space (Tan & Le, 2019): MBConv stage table x width, depth, resolution."""
