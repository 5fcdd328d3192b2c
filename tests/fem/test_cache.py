"""The user cache of meshes and references (fem.cache): hits, misses, invalidation, damage."""

from __future__ import annotations

import multiprocessing
import os
import stat

import numpy as np
import pytest

from fem.cache import MANIFEST, Store, atomic_write, cache_root, key_of, use, verify
from fem.config import parse_mesh, parse_problem
from fem.reference import reference

MESH = {"kind": "lshape", "size": 0.3}
PROBLEM = {"type": "poisson", "source": 1.0,
           "bcs": [{"boundary": "boundary", "type": "dirichlet", "value": 0.0}]}


def _entries(root, namespace):
    folder = root / namespace
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) \
        if folder.is_dir() else []


def _coords(dm):
    x = dm.mesh.geometry.x
    return x[np.lexsort(x.T)]


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROFEM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mesh_miss_then_hit_same_mesh(root):
    first = parse_mesh(MESH).build()
    assert len(_entries(root, "mesh")) == 1
    again = parse_mesh(MESH).build()
    assert len(_entries(root, "mesh")) == 1
    assert again.options == first.options and again.info["quality"] == first.info["quality"]
    # bit for bit the same DOLFINx mesh: same node order, cells and tags
    np.testing.assert_array_equal(again.mesh.geometry.x, first.mesh.geometry.x)
    np.testing.assert_array_equal(again.mesh.geometry.dofmaps[0], first.mesh.geometry.dofmaps[0])
    np.testing.assert_array_equal(again.cell_tags.values, first.cell_tags.values)
    np.testing.assert_array_equal(again.facet_tags.indices, first.facet_tags.indices)
    assert again.cell_names == first.cell_names and again.facet_names == first.facet_names
    assert again.facet_tags.values.size == first.facet_tags.values.size


@pytest.mark.parametrize("change", [{"size": 0.25}, {"refine": 0.7}, {"corner_refine": 0.5},
                                    {"order": 2}])
def test_mesh_any_option_change_is_a_miss(root, change):
    parse_mesh(MESH).build()
    parse_mesh({**MESH, **change}).build()
    assert len(_entries(root, "mesh")) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_damaged_mesh_entry_is_rebuilt(root, damage):
    first = parse_mesh(MESH).build()
    (entry,) = _entries(root, "mesh")
    target = entry / ("mesh.msh" if damage != "manifest" else MANIFEST)
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "delete":
        target.unlink()
    else:
        target.write_text("{not json")
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = parse_mesh(MESH).build()
    np.testing.assert_array_equal(_coords(again), _coords(first))
    (entry,) = _entries(root, "mesh")
    assert verify(entry) is None


def test_cache_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROFEM_CACHE", "off")
    assert cache_root() is None
    parse_mesh(MESH).build()
    use(str(tmp_path / "cli"))  # a command line's --cache wins over the environment
    try:
        assert cache_root() == tmp_path / "cli"
    finally:
        use(None)


def test_reference_hit_from_user_cache_in_a_new_run_dir(root, tmp_path):
    dm, spec = parse_mesh(MESH).build(), parse_problem(PROBLEM)
    first = reference(dm, spec, tmp_path / "run1")
    assert not first.from_cache and len(_entries(root, "reference")) == 1
    again = reference(dm, spec, tmp_path / "run2")
    assert again.from_cache
    np.testing.assert_array_equal(again.u.x.array, first.u.x.array)
    assert (tmp_path / "run2").is_dir()  # the run keeps its own copy
    other = reference(dm, parse_problem({**PROBLEM, "source": 2.0}), tmp_path / "run3")
    assert not other.from_cache and len(_entries(root, "reference")) == 2


@pytest.mark.parametrize("where", ["run", "store"])
@pytest.mark.parametrize("name", ["field.npz", "meta.json"])
def test_damaged_reference_is_solved_again(root, tmp_path, where, name):
    dm, spec = parse_mesh(MESH).build(), parse_problem(PROBLEM)
    first = reference(dm, spec, tmp_path / "run")
    folder = next((tmp_path / "run").iterdir()) if where == "run" else \
        _entries(root, "reference")[0]
    (folder / name).write_bytes((folder / name).read_bytes()[:37])
    if where == "run":  # the user cache still has it: a hit from there, run copy repaired
        with pytest.warns(RuntimeWarning, match="damaged"):
            again = reference(dm, spec, tmp_path / "run")
        assert again.from_cache
    else:
        with pytest.warns(RuntimeWarning, match="damaged"):
            again = reference(dm, spec, tmp_path / "other")
        assert not again.from_cache
    np.testing.assert_allclose(again.u.x.array, first.u.x.array, rtol=0, atol=1e-12)
    assert verify(folder, ("field.npz", "meta.json")) is None


def _put(root: str, n: int) -> str:
    store = Store(root)

    def write(folder):
        (folder / "data.bin").write_bytes(bytes(range(256)) * 4000)

    return str(store.put("ns", {"k": 1}, write))


def test_concurrent_writers_leave_one_valid_entry(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        paths = pool.starmap(_put, [(str(tmp_path), i) for i in range(8)])
    assert len(set(paths)) == 1
    entries = [p for p in (tmp_path / "ns").iterdir()]
    assert [p.name for p in entries] == [key_of("ns", {"k": 1})]
    assert verify(entries[0]) is None


def test_atomic_write_is_group_readable(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "f.json", b"{}")
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH
    assert not list(tmp_path.glob(".f.json.*"))
