"""model = "clif": FV geometry of DOLFINx meshes, exact conservation on a 3D unstructured
mesh, the accuracy of trained C-LIF solvers (1D heat, 2D Laplace, 3D vs FEM), and the
run directory of `fit` (checkpoints, resume equal to an uninterrupted run)."""

from __future__ import annotations

import copy
import functools
import json

import numpy as np
import pytest
import torch

import meshes
from coupling.config import parse_clif_config
from coupling.runs.clif import load_trained_clif, train_clif
from fem.config import load_toml
from fem.errors import ConfigError
from fem.fv_geometry import grid_geometry, stable_dt
from fem.volumes import finite_volumes
from meshes.fenics import MPI, dolfinx, ufl
from spiking import CLIFSolver, FluxNet
from spiking.cfq import FIXED_VALUE, PRESCRIBED_FLUX

EXAMPLES = __import__("pathlib").Path(__file__).parents[2] / "examples"


@functools.cache
def _part(size: float = 0.3):
    dm = meshes.build("cube_minus_spheres", size, MPI.COMM_SELF)
    return dm, finite_volumes(dm)


def test_volumes_match_mesh_integrals():
    dm, geo = _part()
    mesh = dm.mesh
    vol = dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ufl.dx(domain=mesh)))
    area = dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ufl.ds(domain=mesh)))
    assert geo.num_cells == mesh.topology.index_map(3).size_global
    assert np.isclose(geo.volumes.sum(), vol, rtol=1e-12)
    assert np.isclose(geo.boundary_areas.sum(), area, rtol=1e-12)
    # every facet once: 4 faces per tet = 2 per interior facet + 1 per boundary facet
    assert 4 * geo.num_cells == 2 * len(geo.pairs) + len(geo.boundary_cells)
    # tags: the spheres' walls have the area of the cavities' (polyhedral) surfaces
    spheres = geo.boundary("spheres")
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=dm.facet_tags)
    a_s = dolfinx.fem.assemble_scalar(dolfinx.fem.form(1.0 * ds(dm.facet_names["spheres"])))
    assert np.isclose(geo.boundary_areas[spheres].sum(), a_s, rtol=1e-12)


def test_insulated_3d_unstructured_total_exactly_invariant_10000_steps():
    _, geo = _part()
    torch.set_num_threads(1)
    sol = CLIFSolver(geo, FluxNet([8, 8], seed=11), 1e-7, stable_dt(geo, 1.0))
    u0 = torch.as_tensor(np.sin(7 * geo.centroids).sum(1) + 2)
    state = sol.init_state(u0)
    n0 = state.total()
    moved = []
    sol.rollout(state, 10_000, callback=lambda s, st: moved.append(st.quanta_moved))
    assert state.total() - n0 == 0 and state.drift() == 0
    assert sum(moved) > 10_000


def test_open_boundaries_3d_interior_change_equals_counted_flux():
    _, geo = _part()
    kind = np.zeros(len(geo.boundary_cells), dtype=np.int64)
    data = torch.zeros(len(kind), dtype=torch.float64)
    kind[geo.boundary("x0")], data[geo.boundary("x0")] = FIXED_VALUE, 1.0
    kind[geo.boundary("spheres")], data[geo.boundary("spheres")] = PRESCRIBED_FLUX, 0.3
    sol = CLIFSolver(geo, FluxNet([8], seed=4), 1e-7, stable_dt(geo, 1.0), bc_kind=kind,
                     bc_data=lambda t: data)
    state = sol.init_state(torch.zeros(geo.num_cells, dtype=torch.float64))
    sol.rollout(state, 500)
    assert state.boundary_in != 0
    assert state.total() - state.initial_total == state.boundary_in


def test_interval_mesh_equals_grid():
    from fem.interval import interval

    geo = finite_volumes(interval(size=0.1, comm=MPI.COMM_SELF))
    grid = grid_geometry([10])
    order = np.argsort(geo.centroids[:, 0])
    np.testing.assert_allclose(geo.centroids[order], grid.centroids, atol=1e-14)
    np.testing.assert_allclose(np.sort(geo.distances), grid.distances, atol=1e-14)
    np.testing.assert_allclose(geo.boundary_distances, 0.05, atol=1e-14)
    assert sorted(geo.boundary_tags) == [2, 3]


def _run(doc, tmp_path):
    res = train_clif(parse_clif_config(doc), tmp_path, MPI.COMM_WORLD, resume=False)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    return res, lines[-1]


def _quiet(doc, **training):
    doc = copy.deepcopy(doc)
    doc.setdefault("training", {}).update(progress=False, **training)
    return doc


def test_heat1d_trained_to_t02_within_5_percent_at_t1(tmp_path):
    doc = _quiet(load_toml(EXAMPLES / "heat1d-clif.toml"), steps=120)
    doc["mesh"]["n"] = [32]
    res, final = _run(doc, tmp_path)
    assert final["final"] and final["t_end"] == 1.0
    assert final["mass_drift"] == 0 and final["mass_drift_max"] == 0
    assert final["total_quanta"] == final["boundary_quanta"] + final["source_quanta"]
    assert final["rel_l2"] < 0.05 and res.rel_l2 == final["rel_l2"]
    assert final["spikes_per_step"]["quanta_moved_mean"] > 0
    assert final["energy"]["spiking_pj"] > 0
    curve = json.loads((tmp_path / "rollout.json").read_text())
    assert curve["t"][-1] == pytest.approx(1.0) and len(curve["spikes_quanta_moved"]) == \
        final["rollout_steps"]


def test_laplace2d_relaxes_within_2_percent(tmp_path):
    doc = _quiet(load_toml(EXAMPLES / "laplace2d-clif.toml"), steps=80)
    doc["mesh"]["n"] = [20, 20]
    _, final = _run(doc, tmp_path)
    assert final["mass_drift"] == 0
    assert final["rel_l2"] < 0.02


def _small_heat(**training):
    doc = _quiet(load_toml(EXAMPLES / "heat1d-clif.toml"), **training)
    doc["mesh"]["n"] = [16]
    doc["clif"].update(window=8, batch=4)
    return doc


def test_resume_continues_the_run_exactly(tmp_path):
    """20 steps in one go == 10 steps, then `resume` (from config.toml) to 20: same numbers
    (the windows' generator is replayed; constant lr: a cosine schedule's length is the
    first run's training.steps, restored with the scheduler)."""
    kw = {"checkpoint_every": 10, "log_every": 5, "schedule": "none"}
    straight, _ = _run(_small_heat(steps=20, **kw), tmp_path / "straight")
    first = tmp_path / "split"
    _run(_small_heat(steps=10, **kw), first)
    assert sorted(p.name for p in first.glob("ckpt-*.pt")) == ["ckpt-000000010.pt"]
    doc = load_toml(first / "config.toml")  # what `neurofem resume` reads
    doc["training"]["steps"] = 20
    resumed = train_clif(parse_clif_config(doc), first, MPI.COMM_WORLD, resume=True)
    assert resumed.step == 20 and resumed.loss == straight.loss
    assert resumed.rel_l2 == straight.rel_l2
    records = [json.loads(s) for s in (first / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [5, 10, 15, 20]  # 10: the first part's last
    assert records[-1]["final"] and records[-1]["mass_drift"] == 0
    assert "rel_l2" not in records[2]  # rollouts only at the end (clif.evaluate_every = 0)
    net, disc = load_trained_clif(first, MPI.COMM_WORLD)  # what a report rolls out again
    assert disc.step == 20 and disc.evaluate()["rel_l2"] == straight.rel_l2


def test_untrained_flux_is_not_accurate(tmp_path):
    """The accuracy above comes from training: with 0 steps the same rollout is far off."""
    doc = _quiet(load_toml(EXAMPLES / "laplace2d-clif.toml"), steps=0)
    doc["mesh"]["n"] = [12, 12]
    _, final = _run(doc, tmp_path)
    assert final["mass_drift"] == 0
    assert final["rel_l2"] > 0.1


def test_diffusion3d_within_5_percent_of_fem(tmp_path):
    doc = _quiet(load_toml(EXAMPLES / "diffusion3d-clif.toml"), steps=30)
    doc["mesh"]["size"] = 0.25
    doc["clif"].update(window=5, batch=1)
    _, final = _run(doc, tmp_path)
    assert final["mass_drift"] == 0
    assert final["rel_l2"] < 0.05


@pytest.mark.parametrize("patch, key", [
    ({"clif": {"cfl": 2.0}}, "clif.cfl"),
    ({"clif": {"surrogate": "nope"}}, "clif.surrogate"),
    ({"clif": {"bogus": 1}}, "clif.bogus"),
    ({"training": {"batch": 3}}, "training.batch"),
    ({"mesh": {"kind": "grid", "n": [0]}}, "mesh.n"),
    ({"problem": {"type": "elasticity"}}, "problem"),
])
def test_bad_config_names_the_key(patch, key):
    doc = load_toml(EXAMPLES / "heat1d-clif.toml")
    for table, values in patch.items():
        doc[table] = {**doc.get(table, {}), **values}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_clif_config(doc)


@pytest.mark.mpi
def test_two_ranks_split_the_windows_and_match_one_rank(tmp_path_factory):
    """Each rank rolls out its share of the batch; the summed gradient is the serial one."""
    comm = MPI.COMM_WORLD
    base = tmp_path_factory.mktemp("clif") if comm.rank == 0 else None
    base = comm.bcast(base, root=0)
    doc = _small_heat(steps=15, log_every=5, checkpoint_every=15)
    cfg = parse_clif_config(doc)
    serial = train_clif(cfg, base / f"serial{comm.rank}", MPI.COMM_SELF, resume=False)
    both = train_clif(cfg, base / "mpi", comm, resume=False)
    records = [json.loads(s) for s in (base / "mpi" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["ranks"] == comm.size and records[-1]["mass_drift"] == 0
    assert both.loss == pytest.approx(serial.loss, rel=1e-6)
    assert both.rel_l2 == pytest.approx(serial.rel_l2, rel=1e-3)


@pytest.mark.mpi
def test_geometry_is_partition_independent():
    """2 ranks build the same FV geometry (original cell order) as one rank."""
    dm = meshes.build("cube_minus_spheres", 0.4, MPI.COMM_WORLD)
    geo = finite_volumes(dm)
    serial = finite_volumes(meshes.build("cube_minus_spheres", 0.4, MPI.COMM_SELF))
    assert geo.num_cells == serial.num_cells
    np.testing.assert_allclose(np.sort(geo.volumes), np.sort(serial.volumes), rtol=1e-12)
    assert np.isclose(geo.areas.sum(), serial.areas.sum(), rtol=1e-12)
