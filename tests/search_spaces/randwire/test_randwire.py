"""Randwire specifics: generators, DAG conversion, validation, params, operators, model, CLI."""

from __future__ import annotations

import json
import random

import networkx as nx
import pytest

from nas.config import SpecError
from nas.space import Task
from search_spaces.randwire.generators import generate
from search_spaces.randwire.genotype import GeneratorSpec, RandWireGenotype
from search_spaces.randwire.space import RandWireSpace
from tests.conftest import run_nas

SPECS = [GeneratorSpec("er", 32, 7, p=0.2), GeneratorSpec("ba", 32, 7, m=5), GeneratorSpec("ws", 32, 7, k=4, p=0.75)]


# ----- generators ----------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_generators_are_deterministic_per_seed(spec):
    assert generate(spec) == generate(spec)
    other = GeneratorSpec(spec.kind, spec.n, spec.seed + 1, k=spec.k, p=spec.p, m=spec.m)
    assert generate(other) != generate(spec)


def test_generators_keep_their_models_edge_counts_and_point_forward():
    ws = generate(GeneratorSpec("ws", 32, 3, k=6, p=0.5))
    assert len(ws) == 32 * 6 // 2  # rewiring moves edges, never adds or drops them
    ba = generate(GeneratorSpec("ba", 32, 3, m=4))
    assert len(ba) == 4 * (32 - 4)  # star on m+1 nodes, then m edges per new node
    assert generate(GeneratorSpec("er", 32, 3, p=0.0)) == ()
    assert len(generate(GeneratorSpec("er", 32, 3, p=1.0))) == 32 * 31 // 2
    for edges in (ws, ba):
        assert all(src < dst for src, dst in edges)  # lower -> higher index: acyclic


def test_ws_without_rewiring_is_the_ring_lattice_in_ring_order():
    edges = set(generate(GeneratorSpec("ws", 8, 0, k=4, p=0.0)))
    ring = {tuple(sorted((i, (i + d) % 8))) for i in range(8) for d in (1, 2)}
    assert edges == ring


def test_er_draws_a_random_labelling_of_the_networkx_graph():
    spec = GeneratorSpec("er", 32, 3, p=0.2)
    plain = nx.gnp_random_graph(32, 0.2, seed=random.Random(3))  # the same draw, networkx's labels
    ours = nx.Graph(list(generate(spec)))
    ours.add_nodes_from(range(32))
    assert ours.number_of_edges() == plain.number_of_edges() and nx.is_isomorphic(ours, plain)
    assert set(generate(spec)) != {tuple(sorted(e)) for e in plain.edges()}  # relabelled, not as drawn


def test_ba_keeps_insertion_order_every_new_node_points_back_to_m_older_ones():
    m, n = 5, 32
    edges = generate(GeneratorSpec("ba", n, 4, m=m))
    preds = {v: [a for a, b in edges if b == v] for v in range(n)}
    assert all(len(preds[v]) == m for v in range(m + 1, n))  # each arrival attaches to m earlier nodes
    assert preds[0] == [] and all(p == [0] for v in range(1, m + 1) for p in [preds[v]])  # the seed star


def augmented(n: int, edges) -> nx.DiGraph:
    """The stage with its implied input node feeding the sources and output node reading the sinks."""
    graph = nx.DiGraph(list(edges))
    graph.add_nodes_from(range(n))
    graph.add_edges_from(("in", v) for v in range(n) if graph.in_degree(v) == 0)
    graph.add_edges_from((v, "out") for v in range(n) if graph.out_degree(v) == 0)
    return graph


def test_every_stage_is_a_dag_with_one_input_and_one_output_node():
    space, rng = RandWireSpace(preset="small"), random.Random(5)
    for _ in range(60):
        genotype = space.sample(rng)
        for n, edges in zip(genotype.nodes, genotype.edges):
            graph = augmented(n, edges)
            assert nx.is_directed_acyclic_graph(graph)
            assert [v for v in graph if graph.in_degree(v) == 0] == ["in"]
            assert [v for v in graph if graph.out_degree(v) == 0] == ["out"]
            assert nx.descendants(graph, "in") == set(graph) - {"in"}


def test_built_stages_feed_the_input_to_every_source_and_average_every_sink():
    import torch

    from search_spaces.randwire.build import Stage

    rng = random.Random(9)
    space = RandWireSpace(preset="proxy")
    for _ in range(5):
        genotype = space.sample(rng)
        n, edges = genotype.nodes[0], genotype.edges[0]
        graph = nx.DiGraph(list(edges))
        graph.add_nodes_from(range(n))
        sources = [v for v in range(n) if graph.in_degree(v) == 0]
        sinks = [v for v in range(n) if graph.out_degree(v) == 0]
        stage = Stage(n, edges, 4, 8, 2).eval()
        assert [v for v in range(n) if not stage.preds[v]] == sources and list(stage.sinks) == sinks
        x = torch.randn(2, 4, 8, 8)
        outputs = {}
        with torch.no_grad():
            for v in nx.topological_sort(graph):
                outputs[v] = stage.nodes[v]([outputs[p] for p in sorted(graph.predecessors(v))] or [x])
            expected = torch.stack([outputs[v] for v in sinks]).mean(0)
            assert torch.allclose(stage(x), expected, atol=1e-6)
        assert expected.shape == (2, 8, 4, 4)  # sources take the stage's stride and width


# ----- genotype ------------------------------------------------------------------------------------
def good() -> dict:
    return {"space": "randwire", "nodes": [4], "edges": [[[0, 1], [1, 2], [0, 3]]],
            "generators": ["ws(k=2,p=0.5,n=4,seed=0)"]}


@pytest.mark.parametrize("change, message", [
    ({"edges": [[[0, 1], [1, 2], [2, 0]]]}, r"edges\[0\]: edges form a cycle 0 -> 1 -> 2 -> 0"),
    ({"edges": [[[0, 1], [1, 4]]]}, r"edges\[0\]: edge \(1, 4\) out of range: nodes are 0..3"),
    ({"edges": [[[2, 2]]]}, "self-loop"),
    ({"edges": [[[0, 1], [0, 1]]]}, r"duplicate edge \(0, 1\)"),
    ({"edges": [[[0, 1, 2]]]}, "not a pair of node indices"),
    ({"generators": ["gnp(p=0.5,n=4,seed=0)"]}, "unknown generator kind 'gnp'"),
    ({"generators": ["ws(k=3,p=0.5,n=4,seed=0)"]}, "ws needs an even k"),
    ({"generators": ["ws(k=2,p=1.5,n=4,seed=0)"]}, "0 <= p <= 1"),
    ({"generators": ["ba(m=4,n=4,seed=0)"]}, "ba needs 1 <= m < n"),
    ({"generators": ["ws(k=2,n=4,seed=0)"]}, "exactly the keys k, p, n, seed"),
    ({"generators": ["ws(k=2,p=0.5,n=5,seed=0)"]}, r"n=5 but nodes\[0\] is 4"),
    ({"nodes": [4, 4]}, "one entry per stage"),
    ({"nodes": [0]}, r"nodes\[0\] must be a positive integer"),
    ({"edges": []}, "non-empty"),
])
def test_bad_genotype_json_says_what_is_wrong(change, message):
    with pytest.raises(ValueError, match=message):
        RandWireGenotype.from_json(json.dumps({**good(), **change}))


def test_edges_are_stored_sorted_and_any_acyclic_labelling_is_accepted():
    data = {**good(), "edges": [[[3, 0], [1, 2], [0, 1]]]}
    genotype = RandWireGenotype.from_dict(data)
    assert genotype.edges == (((0, 1), (1, 2), (3, 0)),)
    assert RandWireGenotype.from_json(genotype.to_json()) == genotype


def test_generator_strings_round_trip_and_normalise():
    for spec in SPECS:
        assert GeneratorSpec.parse(spec.to_string()) == spec
    assert GeneratorSpec.parse(" ws( seed=1, n=32, p=.75, k=4 ) ").to_string() == "ws(k=4,p=0.75,n=32,seed=1)"
    assert [s.short() for s in SPECS] == ["er(0.2)", "ba(5)", "ws(4,0.75)"]


# ----- params and operators ------------------------------------------------------------------------
def test_per_stage_and_shared_params():
    per_stage = RandWireSpace(preset="regular")
    assert {k.split("_")[1] for k in per_stage.distributions()} == {"kind", "n", "k", "p", "m", "seed"}
    assert len(per_stage.distributions()) == 4 * 6
    shared = RandWireSpace(preset="regular", share="all")
    assert set(shared.distributions()) == {"kind", "n", "k", "p", "m"} | {f"s{i}_seed" for i in range(4)}
    rng = random.Random(0)
    for _ in range(20):
        genotype = shared.sample(rng)
        assert len({(s.kind, s.p, s.m) for s in genotype.specs()}) == 1  # k may be clipped below N/2
        assert genotype.nodes[0] == genotype.nodes[1] // 2  # the regular regime's first stage has N/2
        assert shared.from_params(shared.to_params(genotype)) == genotype
    with pytest.raises(ValueError, match="share one generator"):
        shared.to_params(per_stage.sample(random.Random(3)))


def test_search_nodes_varies_n_and_clips_k_and_m():
    space = RandWireSpace(preset="proxy", search_nodes=True)
    dist = space.distributions()["s0_n"]
    assert (dist.low, dist.high) == (4, 16)
    params = space.to_params(space.sample(random.Random(0)))
    params.update(s0_kind="ws", s0_n=4, s0_k=14, s1_kind="ba", s1_n=5, s1_m=9)
    genotype = space.from_params(params)
    assert genotype.specs()[0].k == 2 and genotype.specs()[1].m == 4
    assert space.from_params(space.to_params(genotype)) == genotype


def test_kinds_option_restricts_the_generators_and_bad_options_are_named():
    space = RandWireSpace(preset="proxy", kinds=["ws"])
    rng = random.Random(0)
    assert {s.kind for _ in range(10) for s in space.sample(rng).specs()} == {"ws"}
    with pytest.raises(SpecError, match="space.kinds"):
        RandWireSpace(kinds=["ws", "gnp"])
    with pytest.raises(SpecError, match="space.nodes"):
        RandWireSpace(nodes=2)


def test_mutate_regenerates_from_changed_generators_and_keeps_other_stages():
    space, rng = RandWireSpace(preset="small"), random.Random(0)
    parent = space.sample(rng)
    for _ in range(40):
        child = space.mutate(parent, rng)
        changed = [i for i in range(3) if child.generators[i] != parent.generators[i]]
        assert changed  # a seed or a generator param moved
        for i in set(range(3)) - set(changed):
            assert child.edges[i] == parent.edges[i]
        assert space.from_params(space.to_params(child)) == child


def test_crossover_takes_each_stage_from_a_parent():
    space, rng = RandWireSpace(preset="small"), random.Random(1)
    a, b = space.sample(rng), space.sample(rng)
    children = [space.crossover(a, b, rng) for _ in range(10)]
    for child in children:
        assert all(child.edges[i] in (a.edges[i], b.edges[i]) for i in range(3))
    assert any(child not in (a, b) for child in children)


def test_known_are_the_papers_generators_at_n32_with_fixed_seeds():
    known = RandWireSpace(preset="small").known()
    assert sorted(known) == ["ba-5", "er-0.2", "ws-4-0.75"]
    assert known["ws-4-0.75"].generators == tuple(f"ws(k=4,p=0.75,n=32,seed={s})" for s in (1, 2, 3))
    regular = RandWireSpace(preset="regular").known()["er-0.2"]
    assert regular.nodes == (16, 32, 32, 32)
    assert RandWireSpace(preset="small").parse("ws(4, 0.75)") == known["ws-4-0.75"]


@pytest.mark.parametrize("preset", ["small", "regular", "proxy"])
def test_known_graphs_are_stored_constants_not_redrawn(preset, monkeypatch):
    from search_spaces.randwire import generators

    stored = generators.frozen_edges()
    known = RandWireSpace(preset=preset).known()
    for genotype in known.values():
        assert all(text in stored for text in genotype.generators)  # every stage of every KNOWN entry
        assert genotype.edges == tuple(stored[text] for text in genotype.generators)
    # a networkx that draws differently cannot change them
    monkeypatch.setattr(generators, "generate", lambda spec: ((0, 1),))
    assert RandWireSpace(preset=preset).known() == known


def test_stored_graphs_are_what_the_generators_draw_with_this_networkx():
    from search_spaces.randwire.generators import frozen_edges, generate
    from search_spaces.randwire.genotype import GeneratorSpec as Spec

    for text, edges in frozen_edges().items():
        # if this fails after a networkx upgrade, KNOWN stay as stored; only new draws change
        assert generate(Spec.parse(text)) == edges, text


@pytest.mark.parametrize("text, message", [
    ("ba(40)", "M must be 1..31"), ("ws(40,0.5)", "K must be even, 2..30"), ("ws(3,0.5)", "K must be even"),
    ("er(1.5)", r"P must be in \[0, 1\]"),
])
def test_paper_notation_out_of_range_is_an_error_not_clipped(text, message):
    with pytest.raises(ValueError, match=message):
        RandWireSpace(preset="small").parse(text)


# ----- model ---------------------------------------------------------------------------------------
def test_forward_at_proxy_size_trains_the_aggregation_weights():
    import torch
    space = RandWireSpace(preset="proxy")
    model = space.build(space.get_known("er-0.2"))
    out = model(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10)
    out.sum().backward()
    gates = [p for name, p in model.named_parameters() if name.endswith(".weights")]
    assert gates and all(p.grad is not None for p in gates)


def test_stage_inputs_stride_and_change_channels():
    space = RandWireSpace(preset="small")
    genotype = space.get_known("ws-4-0.75")
    stage = space.build(genotype).stages[1]  # 78 -> 156 channels
    for node, module in enumerate(stage.nodes):
        depthwise = module.conv[1]
        fed_by_input = not stage.preds[node]
        assert depthwise.stride == ((2, 2) if fed_by_input else (1, 1))
        assert depthwise.in_channels == (78 if fed_by_input else 156)


def test_maps_never_shrink_below_one_pixel():
    import torch
    space = RandWireSpace(preset="proxy")
    task = Task((1, 1, 1), 3)
    model = space.build(space.get_known("ws-4-0.75"), task)
    assert model(torch.randn(2, 1, 1, 1)).shape == (2, 3)
    assert space.cost(space.get_known("ws-4-0.75"), task).flops > 0


def test_genotype_must_fit_the_presets_stage_count():
    small = RandWireSpace(preset="small").get_known("ba-5")
    with pytest.raises(ValueError, match="3 stages, this preset needs 4"):
        RandWireSpace(preset="regular").cost(small)


# ----- describe, label, draw -----------------------------------------------------------------------
def test_cli_describe_prints_the_contract_fields():
    proc = run_nas("describe", "--space", "randwire", "--arch", "ws-4-0.75", "--preset", "small", "--json",
                   check=True)
    info = json.loads(proc.stdout)
    for key in ("space", "arch_id", "params", "flops", "input_shape", "num_classes"):
        assert key in info
    assert info["space"] == "randwire" and info["input_shape"] == [3, 224, 224] and info["num_classes"] == 1000
    assert info["label"] == "ws(4,0.75)x3 N=32"
    assert [s["nodes"] for s in info["stages"]] == [32, 32, 32]
    bad = run_nas("describe", "--space", "randwire", "--arch", "ws(5,0.75)")
    assert bad.returncode == 2 and "K must be even" in bad.stderr and bad.stderr.startswith("nas: error: --arch:")


def test_label_and_draw(tmp_path):
    space = RandWireSpace(preset="proxy")
    genotype = space.get_known("ws-4-0.75")
    assert space.label(genotype) == "ws(4,0.75)x3 N=8"
    mixed = RandWireGenotype(genotype.nodes, genotype.edges,
                             ("er(p=0.2,n=8,seed=1)", genotype.generators[1], "ba(m=5,n=8,seed=3)"))
    assert space.label(mixed) == "er(0.2)/ws(4,0.75)/ba(5) N=8"
    path = tmp_path / "randwire.png"
    space.draw(genotype, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
