"""The full-training recipe of ``nas train`` (settings, learning-rate schedule, augmentation on tensors).

The recipe the papers use for these spaces: SGD with Nesterov momentum, a linear warm-up then a
cosine schedule, label smoothing, drop-path for cell and graph networks growing linearly over
training, the NASNet/DARTS auxiliary head, random crop with padding, horizontal flip and cutout where they make
sense for the data set, an optional EMA of the weights, bf16 autocast and channels-last on CUDA.
Every setting is a flag of ``nas train`` or a key of a TOML file (``--config``); ``-1`` or
``"auto"`` picks the data set's usual value.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from nas.config import Field, validate

FLIP_DATA = ("cifar10", "cifar100", "fashion-mnist")  # horizontal flip keeps the label's meaning
RECIPE: dict[str, Field] = {
    "data": Field(str, default="", help="data set (default: the one the architecture was searched on)"),
    "data_dir": Field(str, default="", help="folder (or .npz file) of the data set (default: the search's)"),
    "dataset": Field(str, default="", help="Dataset factory, package.module:callable, for data = 'dataset' "
                     "(default: the search's)"),
    "size": Field(int, default=-1, min=-1, help="downsample images to size x size pixels (0: full size, as the data set has them; -1: as in the search)"),
    "epochs": Field(int, default=50, min=1, help="passes over the training split"),
    "batch_size": Field(int, default=96, min=2, help="training images per optimizer step"),
    "eval_batch_size": Field(int, default=512, min=1, help="images per batch when scoring"),
    "lr": Field(float, default=0.05, min=0.0, help="peak SGD learning rate (cosine decay after the warm-up)"),
    "momentum": Field(float, default=0.9, min=0.0, max=1.0, help="SGD momentum"),
    "nesterov": Field(bool, default=True, help="Nesterov momentum"),
    "weight_decay": Field(float, default=3e-4, min=0.0, help="L2 weight decay"),
    "warmup_epochs": Field(float, default=1.0, min=0.0, help="linear warm-up before the cosine decay"),
    "label_smoothing": Field(float, default=0.1, min=0.0, max=1.0, help="label smoothing of the cross-entropy loss"),
    "drop_path": Field(float, default=0.2, min=0.0, max=0.9,
                       help="largest drop-path probability (nasnet and nb201 cells, randwire edges)"),
    "aux_weight": Field(float, default=0.4, min=0.0, help="auxiliary head's loss weight (nasnet; 0: no head)"),
    "grad_clip": Field(float, default=5.0, min=0.0, help="global gradient-norm clip (0: off)"),
    "crop_padding": Field(int, default=-1, min=-1, help="random-crop padding in pixels (-1: H/8; 0: off)"),
    "flip": Field(str, default="auto", choices=("auto", "yes", "no"), help="random horizontal flip"),
    "cutout": Field(int, default=-1, min=-1, help="cutout square side (-1: 16 on CIFAR, else off)"),
    "ema": Field(float, default=0.0, min=0.0, max=0.99999, help="EMA decay of the weights (0: off)"),
    "seed": Field(int, default=0, min=0, help="seed of the weights' initialisation, the split and the batch order"),
    "valid_fraction": Field(float, default=0.1, min=0.01, max=0.9,
                            help="share of the training set held out for validation"),
    "train_limit": Field(int, default=0, min=0, help="use at most this many training images (0: all)"),
    "valid_limit": Field(int, default=0, min=0, help="use at most this many validation images (0: all)"),
    "device": Field(str, default="auto", choices=("auto", "cpu", "cuda"),
                    help="where to train (auto: cuda when available)"),
    "amp": Field(bool, default=True, help="bf16 autocast on CUDA"),
    "channels_last": Field(bool, default=True, help="channels-last memory on CUDA"),
    "threads": Field(int, default=0, min=0, help="torch threads (0: OMP_NUM_THREADS or all cores)"),
}


def make_recipe(options: Mapping[str, Any]) -> dict[str, Any]:
    """Recipe settings with defaults filled (``SpecError`` names a bad key as ``recipe.KEY``)."""
    return validate(dict(options), RECIPE, "recipe")


def resolve_augmentation(recipe: dict[str, Any], data: str, side: int) -> dict[str, Any]:
    """The ``auto`` augmentation settings made concrete for a data set with ``side`` x ``side`` images."""
    out = dict(recipe)
    if out["crop_padding"] < 0:
        out["crop_padding"] = max(1, side // 8) if side >= 8 else 0
    if out["flip"] == "auto":
        out["flip"] = "yes" if data in FLIP_DATA else "no"
    if out["cutout"] < 0:
        out["cutout"] = 16 if data.startswith("cifar") else 0
    return out


def learning_rate(recipe: dict[str, Any], step: int, steps_per_epoch: int) -> float:
    """Linear warm-up to ``lr``, then cosine decay to zero at the last step."""
    total = recipe["epochs"] * steps_per_epoch
    warmup = min(total - 1, round(recipe["warmup_epochs"] * steps_per_epoch))
    if step < warmup:
        return recipe["lr"] * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return recipe["lr"] * 0.5 * (1.0 + math.cos(math.pi * progress))


def augment(x: Any, recipe: dict[str, Any], generator: Any) -> Any:
    """Random crop (zero padding = the mean after normalisation), flip and cutout of a batch (B, C, H, W)."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    device = x.device
    pad = recipe["crop_padding"]
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
        rows = (dy[:, None] + torch.arange(h, device=device))[:, None, :, None]  # (B, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=device))[:, None, None, :]  # (B, 1, 1, W)
        batch = torch.arange(n, device=device)[:, None, None, None]
        channel = torch.arange(x.shape[1], device=device)[None, :, None, None]
        x = padded[batch, channel, rows, cols]
    if recipe["flip"] == "yes":
        flip = torch.rand(n, generator=generator, device=device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if recipe["cutout"]:
        half = recipe["cutout"] / 2
        cy = torch.randint(0, h, (n,), generator=generator, device=device)[:, None, None, None]
        cx = torch.randint(0, w, (n,), generator=generator, device=device)[:, None, None, None]
        ys = torch.arange(h, device=device)[None, None, :, None]
        xs = torch.arange(w, device=device)[None, None, None, :]
        hole = ((ys - cy).abs() < half) & ((xs - cx).abs() < half)
        x = x.masked_fill(hole, 0.0)
    return x.contiguous()
