"""A malformed or tampered arch.json is refused with one line naming the field; nothing in it runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from nas import registry

from nas.export import archfile
from nas.space import Task


@pytest.fixture(scope="module")
def good() -> dict:
    space = registry.make_space("nasnet", {"preset": "proxy"})
    genotype = space.get_known("darts-v2")
    return archfile.make(space, genotype, Task((1, 8, 8), 10), normalization={"mean": [0.3], "std": [0.4]},
                         data_name="digits", size=0, metrics={"accuracy": 97.5}, source={"trial": 3},
                         training={"lr": 0.05})


def edit(data: dict, dotted: str, value: object) -> dict:
    out = copy.deepcopy(data)
    *path, last = dotted.split(".")
    target = out
    for key in path:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return out


BAD = [
    ("format", "nasforge-arch/2", "format"),
    ("format", KeyError, "format"),
    ("space.name", "os:system", "space.name"),
    ("space.name", "search_spaces.nasnet.space:NASNetSpace", "space.name"),
    ("space.options.vocabulary", "mine", "space.options.vocabulary"),
    ("space.options.filters", 10 ** 9, "space.options.filters"),
    ("space.options.filters", 4000, "space.options"),  # valid number, but a model of billions of params
    ("space.options.evil", 1, "space.options.evil"),
    ("genotype.normal", [["__import__('os')", 0]], "genotype"),
    ("genotype.extra", 1, "genotype"),
    ("arch_id", "0000000000000000", "arch_id"),
    ("task.input_shape", [1, 8], "task.input_shape"),
    ("task.input_shape", [1, 100000, 100000], "task.input_shape"),
    ("task.num_classes", -3, "task.num_classes"),
    ("task.num_classes", True, "task.num_classes"),
    ("task.normalization", {"mean": [0.1], "std": [0.0]}, "task.normalization.std"),
    ("task.normalization", {"mean": [0.1, 0.2], "std": [1.0, 1.0]}, "task.normalization.mean"),
    ("task.extra", 1, "task.extra"),
    ("cost.params", 1, "cost.params"),
    ("metrics.accuracy", "99", "metrics.accuracy"),
    ("extra", {"code": "print(1)"}, "extra"),
    ("versions", KeyError, "versions"),
]


@pytest.mark.parametrize("dotted, value, field", BAD, ids=[f"{d}={v!r}"[:40] for d, v, _ in BAD])
def test_bad_field_is_named(tmp_path, good, dotted, value, field):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(edit(good, dotted, value)))
    with pytest.raises(ValueError) as err:
        archfile.read(path)
    message = str(err.value)
    assert "\n" not in message
    assert f": {field}" in message, message


def test_good_file_reads(tmp_path, good):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(good))
    arch = archfile.read(path)
    assert arch.genotype.arch_id == good["arch_id"]
    assert arch.task.input_shape == (1, 8, 8)


@pytest.mark.parametrize("text, reason", [("{not json", "not valid JSON"), ("[1, 2]", "expected a JSON object"),
                                          ('{"format": NaN}', "not valid JSON")])
def test_not_an_arch_file(tmp_path, text, reason):
    path = tmp_path / "arch.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=reason):
        archfile.read(path)


def test_huge_file_is_refused_unread(tmp_path):
    path = tmp_path / "arch.json"
    with path.open("w") as handle:
        handle.write(" " * (archfile.MAX_FILE_BYTES + 1))
    with pytest.raises(ValueError, match="too large"):
        archfile.read(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        archfile.read(Path(tmp_path) / "nope.json")
