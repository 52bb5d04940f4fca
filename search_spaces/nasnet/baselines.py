"""Hand-designed baselines as fixed cells of the NASNet macro skeleton (same stem, stacks, head).

NAS papers measure searched cells against ResNet- and VGG-style networks. Here both are cells of
plain 3x3 convolutions (``conv_3x3``: ReLU-conv-BN) placed in exactly the macro network the searched
cells use (stem, N normal cells per stack, reduction cells between the stacks, the same
preprocessing of the cell inputs, global pooling and a linear head), so only the cell differs:

* ``resnet``: a basic residual block, ``h = conv3x3(conv3x3(h[i-1])) + h[i-1]``; in a reduction
  cell the first conv has stride 2 and the shortcut is ``skip_connect`` at stride 2 (a factorized
  reduction, the usual projection shortcut).
* ``vgg``: two stacked 3x3 convolutions without a shortcut; a reduction cell is a 3x3 max-pool
  with stride 2 followed by one 3x3 convolution.

A block needs two inputs; the unused one is the ``none`` op (zeros), which costs nothing. Each cell
outputs only its last block (``concat = (3,)``). Like every cell, the cells read (and preprocess)
h[i-2] as well, which these baselines then ignore: the skeleton is kept identical on purpose.
"""

from __future__ import annotations

from search_spaces.nasnet.genotype import NASNetGenotype

CONV, NONE, SKIP, MAX = "conv_3x3", "none", "skip_connect", "max_pool_3x3"

BASELINES: dict[str, NASNetGenotype] = {
    "resnet": NASNetGenotype(
        normal=(((1, CONV), (1, NONE)), ((2, CONV), (1, SKIP))), normal_concat=(3,),
        reduce=(((1, CONV), (1, NONE)), ((2, CONV), (1, SKIP))), reduce_concat=(3,)),
    "vgg": NASNetGenotype(
        normal=(((1, CONV), (1, NONE)), ((2, CONV), (2, NONE))), normal_concat=(3,),
        reduce=(((1, MAX), (1, NONE)), ((2, CONV), (2, NONE))), reduce_concat=(3,)),
}
