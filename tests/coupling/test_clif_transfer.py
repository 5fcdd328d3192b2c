"""Transferring a C-LIF flux network (`clif.flux_from`, `neurofem train --flux-from RUN`):
the transferred network reproduces the trained one's rollout on its own case, conserves
exactly on a new 2D mesh, the float FV baseline, and one-line errors for bad sources."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import tomli_w
import torch

import meshes
from coupling.cli import main
from coupling.cli.report_clif import case_trained_row, comparison_table
from coupling.config import parse_clif_config
from coupling.runs.clif import load_trained_clif, train_clif
from coupling.runs.clif_transfer import load_flux
from fem.config import load_toml
from fem.fv_geometry import grid_geometry, stable_dt
from fem.volumes import finite_volumes
from meshes.fenics import MPI
from spiking import CLIFSolver
from spiking.cfq import FIXED_VALUE, PRESCRIBED_FLUX
from spiking.cfq_fv import fv_rollout

EXAMPLES = __import__("pathlib").Path(__file__).parents[2] / "examples"


def _small_heat1d() -> dict:
    """examples/heat1d-clif.toml on 16 cells to t = 0.3, 8 training steps."""
    doc = load_toml(EXAMPLES / "heat1d-clif.toml")
    doc["mesh"]["n"] = [16]
    doc["problem"]["time"]["t_end"] = 0.3
    doc["clif"].update(window=5, batch=4, records=4)
    doc["training"].update(steps=8, log_every=4, checkpoint_every=8, progress=False)
    return doc


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained small 1D heat run (the source of the transfers)."""
    run = tmp_path_factory.mktemp("clif-source")
    train_clif(parse_clif_config(_small_heat1d()), run, MPI.COMM_WORLD, resume=False)
    return run


def test_transferred_network_reproduces_its_own_rollout_bit_for_bit(source, tmp_path):
    doc = _small_heat1d()
    doc["clif"]["flux_from"] = str(source)
    doc["training"]["steps"] = 0  # unchanged
    train_clif(parse_clif_config(doc), tmp_path, MPI.COMM_WORLD, resume=False)
    a, b = (np.load(d / "clif_fields.npz") for d in (source, tmp_path))
    # same computation, same shapes, same process: equal quanta, values and curves
    assert np.array_equal(a["quanta"], b["quanta"]) and np.array_equal(a["u"], b["u"])
    ra, rb = (json.loads((d / "rollout.json").read_text()) for d in (source, tmp_path))
    assert ra["rel_l2"] == rb["rel_l2"] and ra["spikes_quanta_moved"] == \
        rb["spikes_quanta_moved"]
    assert rb["summary"]["mass_drift"] == 0 and rb["summary"]["mass_drift_max"] == 0
    # the 0-step run is checkpointed with the source's weights (and u_s): a report rebuilds it
    net, disc = load_trained_clif(tmp_path, MPI.COMM_WORLD)
    src = load_flux(source).net
    assert disc.step == 0
    for (k, p), (_, q) in zip(net.state_dict().items(), src.state_dict().items(), strict=True):
        assert torch.equal(p, q), k
    assert disc.cfg.clif.hidden == [16, 16]


def test_cli_flux_from_runs_the_network_unchanged(source, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(_small_heat1d()))  # training.steps = 8 in the file
    out = tmp_path / "out"
    assert main(["train", str(cfg), "--out", str(out), "--flux-from", str(source)]) == 0
    resolved = load_toml(out / "config.toml")
    assert resolved["training"]["steps"] == 0 and resolved["clif"]["flux_from"] == str(source)
    a, b = (np.load(d / "clif_fields.npz") for d in (source, out))
    assert np.array_equal(a["quanta"], b["quanta"])


def test_report_table_puts_transferred_case_trained_and_float_fv_side_by_side(source,
                                                                              tmp_path):
    doc = _small_heat1d()
    doc["clif"].update(flux_from=str(source), compare_with=str(source))
    doc["training"]["steps"] = 0
    train_clif(parse_clif_config(doc), tmp_path, MPI.COMM_WORLD, resume=False)
    _, disc = load_trained_clif(tmp_path, MPI.COMM_WORLD)
    numbers = disc.evaluate(keep=True)
    title, header, rows = comparison_table(disc, numbers)
    assert [r[0].split(",")[0] for r in rows] == [
        "C-LIF flux network", f"C-LIF flux network trained on this case ({source})",
        "float FV: explicit two-point flux k·(A/d)·(u_i − u_j)"]
    assert "transferred from" in rows[0][0] and "unchanged" in rows[0][0]
    assert rows[1][1:] == rows[0][1:]  # the source's own case: the same rollout
    fv = numbers["float_fv"]
    assert rows[2][1] == f"{fv['rel_l2']:.3%}" and fv["rel_l2"] < numbers["rel_l2"]
    assert rows[0][3] == "0 / 0"
    other = _small_heat1d()
    other["mesh"]["n"] = [20]
    assert "another case" in case_trained_row(source, other, str)[3]


def test_transferred_network_conserves_exactly_on_a_new_2d_mesh(source):
    """The 1D network on an unstructured 2D mesh (w = A/d of its edges): exact budget with
    value, flux and insulated facets and a source; close to the float FV update."""
    net = load_flux(source).net
    geo = finite_volumes(meshes.build("lshape", 0.2, MPI.COMM_SELF))
    kind = np.zeros(len(geo.boundary_cells), dtype=np.int64)
    data = torch.zeros(len(kind), dtype=torch.float64)
    bc = geo.boundary_centroids
    left, bottom = np.flatnonzero(bc[:, 0] < -1 + 1e-9), np.flatnonzero(bc[:, 1] < -1 + 1e-9)
    kind[left], data[left] = FIXED_VALUE, 4.0
    kind[bottom], data[bottom] = PRESCRIBED_FLUX, -2.0
    src = torch.full((geo.num_cells,), 3.0, dtype=torch.float64)
    torch.set_num_threads(1)
    sol = CLIFSolver(geo, net, 1e-6, stable_dt(geo, 1.0, safety=0.9), bc_kind=kind,
                     bc_data=lambda t: data, source=lambda t: src)
    u0 = torch.as_tensor(2.0 + np.sin(3 * geo.centroids[:, 0]) * geo.centroids[:, 1])
    state = sol.init_state(u0)
    drifts = []
    sol.rollout(state, 300, callback=lambda s, st: drifts.append(s.drift()))
    assert state.boundary_in != 0 and state.source_in != 0
    assert drifts == [0] * 300
    assert state.total() == state.initial_total + state.boundary_in + state.source_in
    u = sol.values(state.quanta)
    fv = fv_rollout(sol, u0, 300)
    assert torch.isfinite(u).all()
    # a stated loose band: 8 training steps on 16 cells of 1D heat, used in 2D unchanged
    assert float(torch.linalg.vector_norm(u - fv) / torch.linalg.vector_norm(fv)) < 0.2


def test_float_fv_update_matches_the_heat1d_exact_solution():
    """The FV baseline: 20 cells of u_t = u_xx + 100 sin(πx) to t = 1 within 0.5%."""
    geo = grid_geometry([20])
    h = 1.0 / 20
    x = geo.centroids[:, 0]
    # cell averages of sin(πx) (exact integral)
    avg = (np.cos(np.pi * (x - h / 2)) - np.cos(np.pi * (x + h / 2))) / (np.pi * h)
    src = torch.as_tensor(100 * avg)
    steps = int(np.ceil(1.0 / stable_dt(geo, 1.0, safety=0.9)))
    sol = CLIFSolver(geo, _Zero(), 1e-4, 1.0 / steps,
                     bc_kind=np.full(2, FIXED_VALUE), bc_data=lambda t: torch.zeros(2),
                     source=lambda t: src)
    u = fv_rollout(sol, torch.zeros(20, dtype=torch.float64), steps).numpy()
    ref = 100 / np.pi**2 * (1 - np.exp(-np.pi**2)) * avg
    assert np.linalg.norm(u - ref) / np.linalg.norm(ref) < 5e-3


class _Zero(torch.nn.Module):
    """A flux network stand-in the float FV never calls (it uses the linear flux)."""

    def forward(self, a, b, w):
        raise AssertionError("the float FV update must not call the network")


def _network_run(path):
    path.mkdir()
    doc = load_toml(EXAMPLES / "sinsin-vsn-sp.toml")
    (path / "config.toml").write_text(tomli_w.dumps(doc))
    return path


def _untrained_clif_run(path):
    path.mkdir()
    (path / "config.toml").write_text(tomli_w.dumps(_small_heat1d()))
    return path


@pytest.mark.parametrize("make, says", [
    (lambda p: p, "no such run directory"),
    (lambda p: p.mkdir() or p, "not a run directory"),
    (_network_run, "not a C-LIF"),
    (_untrained_clif_run, "no checkpoint"),
])
def test_bad_flux_from_ends_with_one_line_naming_it(tmp_path, capsys, make, says):
    bad = make(tmp_path / "source")
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(_small_heat1d()))
    code = main(["train", str(cfg), "--out", str(tmp_path / "out"), "--flux-from", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "clif.flux_from" in err[0] and str(bad) in err[0] and says in err[0]
    assert not (tmp_path / "out" / "metrics.jsonl").exists()


def test_a_network_key_contradicting_the_source_is_named(source, tmp_path, capsys):
    doc = copy.deepcopy(_small_heat1d())
    doc["clif"]["hidden"] = [8]
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(doc))
    code = main(["train", str(cfg), "--out", str(tmp_path / "out"), "--flux-from", str(source)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "config clif.hidden" in err[0], err
