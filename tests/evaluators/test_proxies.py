"""Zero-cost proxies: hand-computed values on tiny networks, the conventions every proxy keeps (the
caller's network unchanged, seeded, failures reported), and one network of every space."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from evaluators.cost import count_macs
from evaluators.proxies import PROXIES, MissingInput, ProxyScore, score, vote
from evaluators.proxies import fisher, grad_norm, grasp, jacob_cov, meco, naswot, snip, synflow, zico
from nas import registry

NEEDS_NUMBERS = [name for name in PROXIES if name not in ("params", "flops")]  # the ones a NaN weight breaks


def batch_for(shape: tuple[int, ...], classes: int, n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def seeded_init(factory, seed: int) -> nn.Module:
    """A network whose initial weights come from ``seed``, leaving the global generator as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def small_convnet() -> nn.Module:
    """Conv, BatchNorm, in-place ReLU, dropout and a linear head: everything a proxy could disturb."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 5))


def mlp(hidden: int = 16, act: type[nn.Module] = nn.ReLU) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, hidden), act(), nn.Linear(hidden, hidden), act(),
                         nn.Linear(hidden, 4))


def linear_grads(w1, b1, w2, b2, x, y):
    """Cross-entropy gradients of W1 and W2 of z = W2 (W1 x + b1) + b2, backpropagated by hand."""
    h = x @ w1.T + b1
    z = h @ w2.T + b2
    delta = (torch.softmax(z, dim=1) - nn.functional.one_hot(y, z.shape[1]).double()) / x.shape[0]  # dL/dz
    return (delta @ w2).T @ x, delta.T @ h  # dL/dW1, dL/dW2


def two_linear(gen: torch.Generator, bias: bool = True) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(3, 4, bias=bias), nn.Linear(4, 2, bias=bias)).double()
    with torch.no_grad():
        for param in net.parameters():
            param.copy_(torch.randn(param.shape, generator=gen, dtype=torch.float64))
    return net


# ----- hand-computed values ----------------------------------------------------------------------------------
def test_synflow_of_two_linear_layers_is_twice_the_path_sum():
    gen = torch.Generator().manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.randn(3, 4, generator=gen))
        net[1].weight.copy_(torch.randn(2, 3, generator=gen))
    w1, w2 = net[0].weight.detach().double(), net[1].weight.detach().double()
    path_sum = float(torch.ones(2, dtype=torch.float64) @ w2.abs() @ w1.abs() @ torch.ones(4, dtype=torch.float64))
    # every path x -> W1_jk -> W2_ij -> out carries |W2_ij||W1_jk|; each weight's saliency sums its paths,
    # and every path has two weights: the total is 2 R
    assert synflow(net, input_shape=(4,)) == pytest.approx(2 * path_sum, rel=1e-12)
    assert torch.equal(net[0].weight.detach().double(), w1)  # the signs are the caller's again


def test_synflow_bypasses_batchnorm():
    net = nn.Sequential(nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3), nn.Linear(3, 2, bias=False))
    plain = nn.Sequential(net[0], net[2])
    with torch.no_grad():
        net[1].weight.fill_(7.0)  # a BN that scaled by 7 would change the score 7-fold
    assert synflow(net, input_shape=(4,)) == pytest.approx(synflow(plain, input_shape=(4,)), rel=1e-12)


def naswot_net(act: type[nn.Module]) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 3, bias=False), act(), act())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -2.0]]))
    return net


@pytest.mark.parametrize("act", [nn.ReLU, nn.GELU, nn.SiLU])
def test_naswot_of_known_binary_codes(act):
    x = torch.tensor([[1.0, 2.0], [2.0, -1.0], [-1.0, -1.0]])
    # pre-activations [1, 2, -3], [2, -1, 4], [-1, -1, 1]: codes 110, 101, 001; agreements K_12 = 1,
    # K_13 = 0, K_23 = 2, diagonal 3. The second activation sees the first's output, positive at the same
    # units, so it adds the same K: 2K = [[6, 2, 0], [2, 6, 4], [0, 4, 6]], det = 8 * det K,
    # det K = 3 (3*3 - 2*2) - 1 (1*3 - 2*0) = 12.
    expected = math.log(8 * 12)
    assert naswot(naswot_net(act), (x, torch.zeros(3, dtype=torch.long))) == pytest.approx(expected, rel=1e-12)


def test_naswot_does_not_apply_without_relu():
    net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2))
    result = score("naswot", net, batch_for((2,), 2))
    assert result.value is None
    assert result.error == "naswot: the network has no ReLU to read codes from"


def test_snip_and_grad_norm_match_hand_backpropagation():
    gen = torch.Generator().manual_seed(2)
    net = two_linear(gen)
    x, y = torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1])
    w1, b1, w2, b2 = (p.detach() for p in net.parameters())
    g1, g2 = linear_grads(w1, b1, w2, b2, x, y)
    assert snip(net, (x, y)) == pytest.approx(float((w1 * g1).abs().sum() + (w2 * g2).abs().sum()), rel=1e-9)
    assert grad_norm(net, (x, y)) == pytest.approx(float(g1.norm() + g2.norm()), rel=1e-9)


def test_grasp_matches_an_explicit_hessian():
    gen = torch.Generator().manual_seed(3)
    net = nn.Linear(3, 4, bias=False).double()
    with torch.no_grad():
        net.weight.copy_(torch.randn(4, 3, generator=gen, dtype=torch.float64))
    x, y = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 1, 2])
    w = net.weight.detach().flatten()

    def loss(flat: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(x @ flat.reshape(4, 3).T, y)

    hessian = torch.autograd.functional.hessian(loss, w)
    g = torch.autograd.functional.jacobian(loss, w)
    assert grasp(net, (x, y)) == pytest.approx(float(-(w * (hessian @ g)).sum()), rel=1e-9)


def test_fisher_matches_hand_value_and_is_zero_without_gradient():
    gen = torch.Generator().manual_seed(4)
    net = nn.Linear(3, 4).double()
    x, y = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 1, 2])
    z = net(x).detach()
    dz = (torch.softmax(z, 1) - nn.functional.one_hot(y, 4).double()) / 6
    assert fisher(net, (x, y)) == pytest.approx(float(0.5 * (z * dz).pow(2).mean(0).sum()), rel=1e-9)

    class Blocked(nn.Module):
        """A linear layer whose output is multiplied by zero: its activations get no gradient."""

        def __init__(self) -> None:
            super().__init__()
            self.layer, self.bias = nn.Linear(3, 4), nn.Parameter(torch.zeros(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layer(x) * 0 + self.bias

    assert fisher(Blocked().double(), (x, y)) == 0.0


def test_zico_matches_hand_gradient_statistics():
    gen = torch.Generator().manual_seed(5)
    net = two_linear(gen, bias=False)
    x, y = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1, 0])
    w1, w2 = (p.detach() for p in net.parameters())
    zero = torch.zeros(())
    halves = [linear_grads(w1, zero, w2, zero, x[part], y[part]) for part in (slice(0, 3), slice(3, 6))]
    expected = 0.0
    for layer in (0, 1):
        a, b = halves[0][layer].abs(), halves[1][layer].abs()
        std = (halves[0][layer] - halves[1][layer]).abs() / 2  # population std of two samples
        expected += math.log(float(((a + b) / 2 / std).sum()))
    assert zico(net, (x, y)) == pytest.approx(expected, rel=1e-9)


def test_zico_ignores_weights_whose_gradient_does_not_vary():
    gen = torch.Generator().manual_seed(6)
    net = two_linear(gen, bias=False)
    x, y = torch.randn(3, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 1])
    same = (torch.cat([x, x]), torch.cat([y, y]))  # both halves give the same gradient: std 0 everywhere
    assert zico(net, same) == 0.0


def test_jacob_cov_of_a_linear_network_is_lower_than_a_relu_networks():
    batch = batch_for((12,), 4, n=8)
    linear = seeded_init(lambda: mlp(act=nn.Identity), 0)  # the same Jacobian for every input: correlation 1
    relu = seeded_init(mlp, 0)
    assert jacob_cov(linear, batch) < jacob_cov(relu, batch) - 1e4


def test_meco_of_identical_channels_is_zero():
    conv = nn.Conv2d(1, 4, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(1, 1, 3, 3, generator=torch.Generator().manual_seed(7)).expand(4, 1, 3, 3))
    batch = batch_for((1, 8, 8), 2)
    assert abs(meco(nn.Sequential(conv), batch)) < 1e-9  # correlation all ones: eigenvalues 4, 0, 0, 0
    distinct = seeded_init(lambda: nn.Sequential(nn.Conv2d(1, 4, 3, bias=False)), 0)
    assert meco(distinct, batch) > 1e-3


# ----- conventions ------------------------------------------------------------------------------------------
def snapshot(net: nn.Module) -> tuple:
    state = {key: value.clone() for key, value in net.state_dict().items()}
    modes = [module.training for module in net.modules()]
    flags = [(param.requires_grad, param.grad) for param in net.parameters()]
    return state, modes, flags


@pytest.mark.parametrize("train", [True, False])
def test_proxies_leave_the_network_unchanged(train):
    net = seeded_init(small_convnet, 0)
    net.train(train)
    net[1].train(not train)  # a mixed-mode network keeps its mix
    net[3].weight.requires_grad_(False)
    before = snapshot(net)
    rng_state = torch.get_rng_state()
    for name in PROXIES:
        result = score(name, net, batch_for((3, 8, 8), 5))
        assert result.value is not None, result.error
        state, modes, flags = snapshot(net)
        assert all(torch.equal(state[key], before[0][key]) for key in state), name
        assert (modes, flags) == (before[1], before[2]), name
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global generator is the caller's


def test_proxies_are_deterministic_under_a_seed():
    net = seeded_init(small_convnet, 0)  # dropout: the forward pass draws random numbers
    batch = batch_for((3, 8, 8), 5)
    for name in PROXIES:
        first = score(name, net, batch, seed=3).value
        torch.manual_seed(123)  # the global generator's state must not matter
        assert score(name, net, batch, seed=3).value == first, name
    assert score("snip", net, batch, seed=3).value != score("snip", net, batch, seed=4).value  # dropout masks


@pytest.mark.parametrize("name", NEEDS_NUMBERS)
def test_a_nan_weight_gives_no_value_and_a_reason(name):
    net = seeded_init(small_convnet, 0)
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = float("nan")
    result = score(name, net, batch_for((3, 8, 8), 5))
    assert isinstance(result, ProxyScore)
    assert result.value is None
    assert result.error.startswith(f"{name}: ") and "\n" not in result.error


def test_a_network_that_raises_gives_no_value_and_a_reason():
    net = nn.Sequential(nn.Flatten(), nn.Linear(5, 2))  # wrong input size
    result = score("snip", net, batch_for((3, 4, 4), 2))
    assert result.value is None and result.error.startswith("snip: RuntimeError: ")


def test_caller_mistakes_raise():
    net = mlp()
    with pytest.raises(KeyError, match="synflow"):
        score("no-such-proxy", net, batch_for((12,), 4))
    with pytest.raises(MissingInput, match="minibatch"):
        score("snip", net, None)
    with pytest.raises(ValueError, match="splits"):
        score("snip", net, batch_for((12,), 4), splits=3)
    assert score("synflow", net, None, input_shape=(12,)).value == score("synflow", net, batch_for((12,), 4)).value


def test_flops_takes_the_cost_model_or_counts():
    net = seeded_init(small_convnet, 0)

    class Cost:
        flops = 1234

    assert score("flops", net, None, cost=Cost()).value == 1234.0
    assert score("flops", net, batch_for((3, 8, 8), 5)).value == float(count_macs(net, (3, 8, 8)))


def test_vote_rank_averages_and_drops_failed_networks():
    assert vote({"a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]}) == [2.0, 2.0, 2.0]
    assert vote({"a": [0.1, None, 0.3, 0.2], "b": [10.0, 5.0, 30.0, float("nan")]}) == [1.0, None, 2.0, None]
    assert vote({"a": [0.1, 0.5, 0.3], "b": [5.0, 10.0, 30.0]}) == [1.0, 2.5, 2.5]
    with pytest.raises(ValueError, match="lengths"):
        vote({"a": [1.0], "b": [1.0, 2.0]})


def nb201_networks(count: int) -> list[nn.Module]:
    space = registry.make_space("nb201", {"preset": "proxy"})
    rng = random.Random(0)
    return [seeded_init(lambda: space.build(space.sample(rng), space.default_task()), i) for i in range(count)]


def test_the_order_of_networks_is_stable_under_a_seed():
    nets = nb201_networks(4)
    batch = batch_for((1, 8, 8), 10)
    names = [name for name in PROXIES if name != "flops"]
    forward = {name: [score(name, net, batch, seed=1).value for net in nets] for name in names}
    backward = {name: [score(name, net, batch, seed=1).value for net in reversed(nets)][::-1] for name in names}
    assert forward == backward  # a network's score does not depend on what was scored before it
    votes = vote(forward)
    assert None not in votes and len(set(votes)) > 1


# ----- every space --------------------------------------------------------------------------------------------
# small macro settings, so that the test takes seconds: the proxy preset of EfficientNet's space still
# has B0's seven stages and 1280-channel head (millions of parameters); two MBConv stages keep its SiLU and SE
SPACE_OPTIONS = {"nb201": {}, "nasnet": {}, "randwire": {}, "vit": {},
                 "scaling": {"search": "baseline", "baseline": "r1_k3_s1_e1_c16_se0.25 r1_k3_s2_e6_c24_se0.25"}}


@pytest.mark.parametrize("space_name", sorted(SPACE_OPTIONS))
def test_every_proxy_scores_a_network_of_every_space(space_name):
    space = registry.make_space(space_name, {"preset": "proxy", **SPACE_OPTIONS[space_name]})
    task = space.default_task()
    rng = random.Random(0)
    genotype = min((space.sample(rng) for _ in range(4)), key=lambda g: space.cost(g, task).flops)
    net = seeded_init(lambda: space.build(genotype, task), 0)
    batch = batch_for(task.input_shape, task.num_classes)
    for name in PROXIES:
        result = score(name, net, batch, cost=space.cost(genotype, task)) if name == "flops" else \
            score(name, net, batch)
        assert result.value is not None, result.error  # every built-in space has ReLU, GELU or SiLU modules


class _IgnoresInput(nn.Module):
    """Logits from a parameter only: what an nb201 cell whose every path is 'none' amounts to."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.ones(x.shape[0], 3))


def test_jacob_cov_says_when_the_output_ignores_the_input():
    batch = (torch.randn(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]))
    result = score("jacob_cov", _IgnoresInput(), batch)
    assert result.value is None and result.error == "jacob_cov: the network's output does not depend on its input"
