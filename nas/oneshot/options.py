"""Options of one-shot training, shared by the ``supernet`` evaluator and the differentiable controllers."""

from __future__ import annotations

from nas.config import Field
from nas.evaluator import DATA_OPTIONS as DATA

TRAINING = {
    **DATA,
    "epochs": Field(int, default=10, min=1, help="passes over the training data"),
    "batch_size": Field(int, default=64, min=2, help="training images per step"),
    "lr": Field(float, default=0.025, min=0.0, help="weights' SGD learning rate (cosine to 0.001 of it)"),
    "momentum": Field(float, default=0.9, min=0.0, max=1.0, help="weights' SGD momentum"),
    "weight_decay": Field(float, default=3e-4, min=0.0, help="weights' L2 weight decay"),
    "grad_clip": Field(float, default=5.0, min=0.0, help="global gradient-norm clip (0: off)"),
    "threads": Field(int, default=0, min=0, help="torch threads (0: OMP_NUM_THREADS or all cores)"),
    "device": Field(str, default="auto", choices=("auto", "cpu", "cuda"),
                    help="where to train (auto: cuda when available)"),
}

SPOS = {
    **TRAINING,
    "sampling": Field(str, default="uniform", choices=("uniform", "fair"),
                      help="paths per step: one uniform sample (SPOS), or every op once (FairNAS)"),
    "bn_batches": Field(int, default=16, min=0,
                        help="training batches that recompute BatchNorm statistics per candidate"),
    "eval_batch_size": Field(int, default=512, min=1, help="images per batch when scoring a candidate"),
    "checkpoint": Field(str, default="",
                        help="a trained supernet to use instead of training one ('': the run's own)"),
    "retrain_top": Field(int, default=0, min=0,
                         help="after the search, train the best K standalone (train evaluator) and record both"),
    "retrain_epochs": Field(float, default=1.0, min=0.0, help="epochs of each standalone retraining"),
    "retrain_latency": Field(str, default="", choices=("", "torch", "onnxruntime", "onnxruntime-int8"),
                             help="also measure each retrained network's latency_ms with this backend"),
}

DIFFERENTIABLE = {
    **TRAINING,
    "arch_lr": Field(float, default=3e-4, min=0.0, help="Adam learning rate of the architecture parameters"),
    "arch_weight_decay": Field(float, default=1e-3, min=0.0, help="L2 weight decay of the architecture parameters"),
    "warmup": Field(float, default=0.4, min=0.0, max=0.9,
                    help="share of the epochs that train weights only, architecture frozen (an untrained "
                         "convolution loses to a pool)"),
    "prevent_collapse": Field(bool, default=True,
                              help="a derived cell type without any convolution takes its strongest one"),
    "latency_weight": Field(float, default=0.0, min=0.0,
                            help="weight of the expected-latency loss term (needs [latency] lut)"),
    "latency_target": Field(float, default=0.0, min=0.0,
                            help="ms: the term is weight * max(0, L/target - 1), L the derived cell's latency "
                                 "(gradient: the expected latency's); 0: weight * E[lat]/E0"),
    "samples": Field(int, default=0, min=0,
                     help="after the final genotype, propose this many more from the learned distribution "
                          "(0: as many as the budget allows)"),
}

METHODS = {
    "darts": {"regularization": Field(str, default="none", choices=("none", "beta"),
                                      help="beta: Beta-DARTS' regularisation of the logits' log-sum-exp"),
              "reg_weight": Field(float, default=0.5, min=0.0, help="weight of the regularisation (grows linearly)")},
    "gdas": {"tau_max": Field(float, default=10.0, min=0.01, help="Gumbel-softmax temperature at the start"),
             "tau_min": Field(float, default=0.1, min=0.01, help="... and at the end")},
    "drnas": {"reg_weight": Field(float, default=1e-3, min=0.0,
                                  help="weight of the L2 term on the Dirichlet concentrations (anti-collapse)")},
}
