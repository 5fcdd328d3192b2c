"""The microstructure bank: spec validation (one line naming the key), deterministic and
disjoint members, fractions in range, and a tiny bank of 2D RVEs built through a cache."""

import json

import numpy as np
import pytest

from meshes.bank import BankSpec, bank_members, build_bank, parse_bank
from meshes.errors import MeshError
from meshes.fenics import MPI
from neurofem_errors import ConfigError

SPEC = {"kind": "rve2d", "count": 30, "held_out": 10, "volume_fraction": [0.1, 0.3],
        "n": [3, 6], "size": 0.1, "seed": 7}


def test_same_spec_same_members():
    assert bank_members(parse_bank(SPEC)) == bank_members(parse_bank(dict(SPEC)))
    other = bank_members(parse_bank({**SPEC, "seed": 8}))
    assert other != bank_members(parse_bank(SPEC))


def test_training_and_held_out_never_share_a_packing_seed():
    train, held = bank_members(parse_bank(SPEC))
    assert len(train) == 30 and len(held) == 10
    seeds = [m["seed"] for m in train + held]
    assert len(set(seeds)) == len(seeds)
    # more training members leave the first ones and the held-out set as they were
    train2, held2 = bank_members(parse_bank({**SPEC, "count": 31}))
    assert train2[:30] == train and held2 == held


def test_members_are_drawn_within_the_ranges_and_are_build_arguments():
    train, held = bank_members(parse_bank(SPEC))
    vf = np.array([m["volume_fraction"] for m in train + held])
    n = np.array([m["n"] for m in train + held])
    assert np.all((vf >= 0.1) & (vf <= 0.3)) and np.ptp(vf) > 0.1  # spread over the range
    assert np.all((n >= 3) & (n <= 6)) and set(n) == {3, 4, 5, 6}
    assert set(train[0]) == {"kind", "size", "volume_fraction", "n", "gap", "placement", "seed"}
    assert train[0]["kind"] == "rve2d" and train[0]["size"] == 0.1
    withi = bank_members(parse_bank({**SPEC, "interface_size": 0.05}))[0][0]
    assert withi["interface_size"] == 0.05
    json.dumps(train)  # plain values: usable as cache keys and in run records


def test_one_value_is_a_range_of_one_and_defaults():
    spec = parse_bank({"count": 2, "n": 5, "volume_fraction": 0.2})
    assert spec.n == (5, 5) and spec.volume_fraction == (0.2, 0.2)
    assert spec.kind == "rve" and spec.held_out == 20 and spec.placement == "inside"
    assert isinstance(spec, BankSpec)


@pytest.mark.parametrize("table, key", [
    ({"count": 1, "volume_fraction": [0.1, 0.6]}, "bank.volume_fraction"),
    ({"count": 1, "volume_fraction": 0.7}, "bank.volume_fraction"),
    ({"count": 1, "volume_fraction": [0.3, 0.2]}, "bank.volume_fraction"),
    ({"count": 1, "volume_fraction": [0.0, 0.2]}, "bank.volume_fraction"),
    ({"count": 1, "volume_fraction": 0.4}, "bank.volume_fraction"),  # above RSA of spheres
    ({"kind": "rve2d", "count": 1, "volume_fraction": 0.52}, "bank.volume_fraction"),
    ({"count": 1, "colour": "red"}, "bank.colour"),
    ({"count": 0}, "bank.count"),
    ({}, "bank.count"),
    ({"count": True}, "bank.count"),
    ({"count": 1, "held_out": -1}, "bank.held_out"),
    ({"count": 1, "n": [6, 3]}, "bank.n"),
    ({"count": 1, "n": 2.5}, "bank.n"),
    ({"count": 1, "kind": "sphere"}, "bank.kind"),
    ({"count": 1, "placement": "edge"}, "bank.placement"),
    ({"count": 1, "size": 0}, "bank.size"),
    ({"count": 1, "gap": -0.1}, "bank.gap"),
    ({"count": 1, "seed": -1}, "bank.seed"),
])
def test_bad_specs_are_one_config_error_naming_the_key(table, key):
    with pytest.raises(ConfigError) as err:
        parse_bank(table)
    assert str(err.value).startswith(f"config {key}: "), str(err.value)
    assert "\n" not in str(err.value)


def test_where_names_the_table():
    with pytest.raises(ConfigError) as err:
        parse_bank({"count": 0}, where="surrogate.bank")
    assert str(err.value).startswith("config surrogate.bank.count: ")
    with pytest.raises(ConfigError, match="^config bank: expected a table"):
        parse_bank([1, 2])


class _Cache:
    """A cache that never hits and records what `build` stores (meshes.api.MeshCache)."""

    def __init__(self, root):
        self.root, self.puts = root, []

    def get(self, namespace, doc, required=()):
        return None

    def put(self, namespace, doc, write):
        folder = self.root / str(len(self.puts))
        folder.mkdir()
        write(folder)
        self.puts.append((namespace, doc))
        return folder


def test_build_bank_of_two_2d_rves_through_the_cache(tmp_path):
    """Two coarse rve2d members: each mesh holds its member's options, its area fraction
    within 10 % of the member's (size 0.1, interfaces 0.05: polygons ≈ 5 % short), and
    the cache stored both requests."""
    spec = parse_bank({"kind": "rve2d", "count": 2, "held_out": 0, "volume_fraction": [0.1, 0.2],
                       "n": [3, 4], "size": 0.1, "seed": 3})
    train, _ = bank_members(spec)
    cache = _Cache(tmp_path)
    dms = build_bank(train, MPI.COMM_SELF, cache=cache)
    assert len(dms) == 2 and len(cache.puts) == 2
    for dm, m in zip(dms, train, strict=True):
        assert dm.kind == "rve2d" and dm.options["seed"] == m["seed"]
        assert dm.options["volume_fraction"] == m["volume_fraction"] and dm.options["n"] == m["n"]
        assert abs(dm.info["volume_fraction_mesh"] - m["volume_fraction"]) < 0.1 * m[
            "volume_fraction"]
        assert set(dm.cell_names) == {"matrix", "inclusion"}


def test_a_member_that_does_not_pack_names_its_index_and_options():
    good = {"kind": "rve2d", "size": 0.2, "volume_fraction": 0.1, "n": 2, "seed": 1}
    jammed = {"kind": "rve2d", "size": 0.2, "volume_fraction": 0.45, "n": 40, "gap": 0.05,
              "seed": 2, "max_attempts": 300}
    with pytest.raises(MeshError) as err:
        build_bank([good, jammed], MPI.COMM_SELF)
    text = str(err.value)
    assert text.startswith("bank member 1 ") and '"seed": 2' in text and "not reached" in text
    assert "\n" not in text
