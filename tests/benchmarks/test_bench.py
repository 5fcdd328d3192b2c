"""`neurofem bench`: the grid's configs, its bookkeeping, and one quick run of every cell."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import grid, measure, peers, tables
from benchmarks.grid import METHODS, PROBLEMS, NotApplicable
from coupling.config import parse_run_config

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("problem", "method", "rel_l2", "activity", "energy_ratio", "train_s", "ranks")


def _neurofem(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "coupling.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---- configs ------------------------------------------------------------------------
NETWORK_PROBLEMS = [p for p in PROBLEMS if set(PROBLEMS[p].cells()) != {"clif"}]


@pytest.mark.parametrize("problem", NETWORK_PROBLEMS)
def test_methods_share_shape_budget_and_points(problem):
    """Every applicable method of a problem: same hidden widths, mesh, steps; valid config."""
    from coupling.config import parse_run_config

    p = PROBLEMS[problem]
    docs = {}
    for m in grid.NETWORK_METHODS:
        try:
            docs[m] = grid.method_config(p, m)
        except NotApplicable as exc:
            assert str(exc)  # a reason, not a bare n/a
            continue
        parse_run_config(docs[m])  # the trainer accepts it
    assert len(docs) >= 2
    hidden = {tuple(d["network"]["hidden"]) for d in docs.values()}
    meshes = {json.dumps(d["mesh"], sort_keys=True) for d in docs.values()}
    steps = {d["training"]["steps"] for d in docs.values()}
    assert len(hidden) == 1 and len(meshes) == 1 and steps == {p.steps}
    for m, d in docs.items():
        assert d["network"]["neuron"] == ("vsn" if METHODS[m].neuron == "vsn" else "ann")
        assert d["training"]["lbfgs_steps"] == 0
    if "ann2snn" in docs:
        assert docs["ann2snn"]["network"]["activation"] == "relu"


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if "clif" in PROBLEMS[p].cells()])
def test_clif_cells_run_the_problems_clif_example(problem):
    """The clif cell is the problem's `model = "clif"` example with the bench's budget."""
    from coupling.config import parse_clif_config
    from fem.config import load_toml

    p = PROBLEMS[problem]
    own = load_toml(grid.CONFIGS / p.clif)
    for quick in (False, True):
        doc = grid.method_config(p, "clif", quick=quick)
        assert doc["model"] == "clif" and doc["problem"] == own["problem"]
        cfg = parse_clif_config(doc)  # the C-LIF trainer accepts it
        assert cfg.training.steps == (grid.QUICK_STEPS if quick else own["training"]["steps"])
    assert grid.method_config(p, "clif", steps=7)["training"]["steps"] == 7
    with pytest.raises(NotApplicable, match="clif"):
        grid.method_config(PROBLEMS["rve"], "clif")
    if p.cells() == ("clif",):
        with pytest.raises(NotApplicable, match="C-LIF"):
            grid.method_config(p, "vsn-galerkin")


def test_not_applicable_cells_are_the_documented_ones():
    """Galerkin has no space-time form; DeepXDE cannot express the interface conditions of
    elasticity, while the vanilla PINN gets them (with the inclusion-depth input)."""
    for p in ("burgers1d", "heat1d"):
        with pytest.raises(NotApplicable, match="space-time"):
            grid.method_config(PROBLEMS[p], "vsn-galerkin")
    with pytest.raises(NotApplicable, match="interface"):
        grid.method_config(PROBLEMS["rve"], "deepxde")
    doc = grid.method_config(PROBLEMS["rve"], "ann-autograd")
    cfg = parse_run_config(doc)
    assert (cfg.residual.kind, cfg.boundary.mode, cfg.inputs.interface_distance) == (
        "autograd", "soft", True)


@given(st.dictionaries(st.sampled_from("abc"), st.one_of(st.integers(), st.none(),
       st.dictionaries(st.sampled_from("xy"), st.integers(), max_size=2)), max_size=3))
def test_merge_overrides_and_removes(over):
    base = {"a": {"x": 1, "z": 3}, "b": 2}
    out = grid.merge(base, over)
    assert base == {"a": {"x": 1, "z": 3}, "b": 2}  # the input is not modified
    for k, v in over.items():
        if v is None:
            assert k not in out
        elif isinstance(v, dict) and k == "a":
            assert out["a"] == {**base["a"], **v}
        else:
            assert out[k] == v


@settings(max_examples=50)
@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=30), st.floats(0.001, 1.0))
def test_time_to_is_the_first_logged_crossing(errors, target):
    records = [{"step": 10 * i, "rel_l2": e, "wall_s": 0.5 * i} for i, e in enumerate(errors)]
    got = measure.time_to(records, target)
    hits = [0.5 * i for i, e in enumerate(errors) if e <= target]
    assert got == (hits[0] if hits else None)


def test_select_and_bad_only():
    assert len(grid.select([])) == sum(len(p.cells()) for p in PROBLEMS.values())
    assert {m for _, m in grid.select([])} == set(METHODS)
    assert grid.select(["clif"]) == [("heat1d", "clif"), ("laplace2d", "clif"),
                                      ("diffusion3d", "clif")]
    with pytest.raises(grid.BenchError, match="laplace2d.*no cell 'ann-sp'"):
        grid.select(["laplace2d/ann-sp"])
    assert grid.select(["lshape/vsn-galerkin"]) == [("lshape", "vsn-galerkin")]
    assert {m for _, m in grid.select(["deepxde"])} == {"deepxde"}
    with pytest.raises(grid.BenchError, match="poison"):
        grid.select(["poison"])


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    r = _neurofem("bench", "--only", "lshape/nope", "--out", str(tmp_path), timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "neurofem: error: --only 'lshape/nope': unknown method 'nope'"]


def test_deepxde_absent_is_skipped(monkeypatch, tmp_path):
    monkeypatch.setattr(peers, "available", lambda: False)
    out = peers.run_deepxde(PROBLEMS["lshape"], {}, tmp_path, comm=None)
    assert out["status"] == "skipped" and "not installed" in out["reason"]


def test_hs_young_bounds_bracket_the_phases():
    """E bounds from Hashin–Shtrikman lie between the phase moduli, lower ≤ upper."""
    from fem.problems import bulk_shear, hashin_shtrikman

    mats = {"matrix": (3.5, 0.35), "inclusion": (70.0, 0.22)}
    K, G = zip(*(bulk_shear(*m) for m in mats.values()), strict=True)
    for f in (0.05, 0.15, 0.4):
        hs = hashin_shtrikman(list(K), list(G), [1 - f, f])
        lo = 9 * hs["K"][0] * hs["G"][0] / (3 * hs["K"][0] + hs["G"][0])
        hi = 9 * hs["K"][1] * hs["G"][1] / (3 * hs["K"][1] + hs["G"][1])
        assert 3.5 < lo <= hi < 70.0


def test_packaged_configs_are_the_examples():
    """The configs shipped in benchmarks/configs/ are byte for byte the examples/ files."""
    names = {n for p in PROBLEMS.values() for n in (p.example, p.clif) if n}
    assert names == {f.name for f in grid.CONFIGS.glob("*.toml")}
    for name in sorted(names):
        shipped, example = grid.CONFIGS / name, ROOT / "examples" / name
        assert shipped.read_bytes() == example.read_bytes(), (
            f"{shipped} differs from {example}: copy examples/{name} over it")


def test_markdown_of_the_recorded_run_is_unchanged():
    """The tables of the recorded full run, rebuilt from its JSON, are its Markdown."""
    for js in sorted((ROOT / "benchmarks" / "results").glob("20*.json")):
        doc = json.loads(js.read_text())
        assert tables.markdown(doc) == js.with_suffix(".md").read_text(), js.name


def _doc_with(records: list[dict]) -> dict:
    doc = json.loads(sorted((ROOT / "benchmarks" / "results").glob("20*.json"))[0].read_text())
    return {**doc, "records": records, "scaling": []}


def test_offnode_table_shows_the_cells_offnode_errors():
    """A record with off-node errors gets a row of the off-node table, every number from it;
    records without them (the recorded run's) get no such section."""
    base = next(r for r in json.loads(sorted((ROOT / "benchmarks" / "results").glob(
        "20*.json"))[0].read_text())["records"] if r["status"] == "ok")
    rec = {**base, "problem": "lshape", "number": 2, "label": "VSN + Galerkin",
           "offnode": {"nodal_rel_l2": 0.004, "rel_l2": 0.014, "boundary_cells": 0.0529,
                       "interior_cells": 0.0137, "interpolant_rel_l2": 0.0028,
                       "max_of_range": 0.0614}}
    row = tables.offnode_row(rec)
    assert row == ("| 2 lshape | VSN + Galerkin | 0.40% | 1.40% | 3.50× | 5.29% | 1.37% | "
                   "0.28% | 6.14% |")
    md = tables.markdown(_doc_with([rec]))
    assert "## Off-node accuracy" in md and row in md.splitlines()
    assert "## Off-node accuracy" not in tables.markdown(_doc_with([{**rec, "offnode": None}]))


def test_lift_table_names_cells_whose_lift_did_the_work():
    """Every cell with a lift gets its lift-alone error, the ratio and a verdict from the
    numbers: ≥ 5× learned, < 2× the lift did the work, in between says how much."""
    base = next(r for r in json.loads(sorted((ROOT / "benchmarks" / "results").glob(
        "20*.json"))[0].read_text())["records"] if r["status"] == "ok")
    rows = []
    for net, lift, verdict in ((0.01, 0.10, "≥ 5× better"), (0.016, 0.004, "lift did the work"),
                               (0.02, 0.07, "only 3.5×")):
        rec = {**base, "problem": "poisson2d", "number": 3, "label": "NeuroPINN (VSN + sp)",
               "boundary": "hard", "rel_l2": net, "lift_rel_l2": lift}
        row = tables.lift_row(rec)
        assert verdict in row and f"{100 * lift:.2f}%" in row and f"{100 * net:.2f}%" in row
        rows.append(rec)
    assert "lift did the work" in tables.lift_row({**rows[0], "lift_rel_l2": 0.015})
    md = tables.markdown(_doc_with(rows))
    assert "## Lift alone" in md and all(tables.lift_row(r) in md for r in rows)
    assert "## Lift alone" not in tables.markdown(_doc_with([{**base, "lift_rel_l2": None}]))


def test_galerkin_cell_records_its_offnode_errors(tmp_path):
    """A network cell records the off-node measures of its final network (quick L-shape)."""
    from benchmarks.cells import OFFNODE_KEYS, run_cell
    from meshes.fenics import MPI

    r = run_cell(PROBLEMS["lshape"], "vsn-galerkin", True, tmp_path, MPI.COMM_SELF, steps=5)
    assert r["status"] == "ok", r.get("reason")
    o = r["offnode"]
    assert set(o) == {"nodal_rel_l2", *OFFNODE_KEYS} and o["nodal_rel_l2"] == r["rel_l2"]
    assert 0 < o["rel_l2"] < 10 and 0 < o["max_of_range"] < 10
    assert min(o["boundary_cells"], o["interior_cells"]) <= o["rel_l2"] <= max(
        o["boundary_cells"], o["interior_cells"])
    assert tables.offnode_row(r) in tables.markdown(_doc_with([r]))
    assert r["lift_rel_l2"] > 0 and tables.lift_row(r) in tables.markdown(_doc_with([r]))


def test_young_from_bulk_shear_inverts_bulk_shear():
    from fem.problems import bulk_shear
    from validation.mechanics import young_from_bulk_shear

    for E, nu in ((3.5, 0.35), (70.0, 0.22), (1.0, 0.0), (2.0, 0.49)):
        assert young_from_bulk_shear(*bulk_shear(E, nu)) == pytest.approx(E, rel=1e-12)


def _two_phase_cube(n: int = 4):
    """Unit cube, n³ × 6 tets, phase "a" (tag 1) for x < 1/2 and "b" (tag 2) beyond."""
    import numpy as np

    from meshes.core import DistributedMesh
    from meshes.fenics import MPI, dolfinx

    mesh = dolfinx.mesh.create_unit_cube(MPI.COMM_SELF, n, n, n)
    tdim = mesh.topology.dim
    n_cells = mesh.topology.index_map(tdim).size_local
    mid = dolfinx.mesh.compute_midpoints(mesh, tdim, np.arange(n_cells, dtype=np.int32))
    values = np.where(mid[:, 0] < 0.5, 1, 2).astype(np.int32)
    tags = dolfinx.mesh.meshtags(mesh, tdim, np.arange(n_cells, dtype=np.int32), values)
    return DistributedMesh(mesh, tags, None, {"a": 1, "b": 2}, {})


def test_phase_fractions_and_hs_bounds_on_a_mesh():
    """Measured fractions of a half/half cube; HS bounds on E bracket Voigt–Reuss-wise."""
    from validation.mechanics import hashin_shtrikman_young, phase_fractions

    dm = _two_phase_cube()
    f = phase_fractions(dm)
    assert f == pytest.approx({"a": 0.5, "b": 0.5}, rel=1e-12)
    assert phase_fractions(dm, ["b"]) == pytest.approx({"b": 1.0})
    mats = {"a": (3.5, 0.35), "b": (70.0, 0.22), "c": (1.0, 0.3)}  # "c": not on this mesh
    hs = hashin_shtrikman_young(mats, f)
    assert set(hs["fractions"]) == {"a", "b"}
    reuss, voigt = 1 / (0.5 / 3.5 + 0.5 / 70.0), 0.5 * 3.5 + 0.5 * 70.0
    assert reuss < hs["lower"] < hs["upper"] < voigt
    one = hashin_shtrikman_young({"a": (3.5, 0.35)}, {"a": 1.0})  # one phase: E itself
    assert one["lower"] == pytest.approx(3.5) and one["upper"] == pytest.approx(3.5)


@pytest.mark.parametrize("axis", [0, 2])
def test_apparent_young_modulus_of_uniaxial_stress_is_E(axis):
    """u of uniaxial stress along `axis` in a homogeneous block: ∫σ_ii/∫ε_ii = E exactly."""
    import numpy as np

    from fem.problems import bulk_shear
    from meshes.fenics import dolfinx
    from validation.mechanics import apparent_young_modulus

    E, nu, eps = 3.5, 0.35, 0.01
    K, G = bulk_shear(E, nu)
    lmbda, mu = K - 2 * G / 3, G
    mesh = _two_phase_cube(2).mesh
    V = dolfinx.fem.functionspace(mesh, ("Lagrange", 1, (3,)))
    u = dolfinx.fem.Function(V)
    scale = np.full(3, -nu * eps)
    scale[axis] = eps
    u.interpolate(lambda x: scale[:, None] * x)
    assert apparent_young_modulus(u, lmbda, mu, mesh, axis=axis) == pytest.approx(E, rel=1e-10)
    other = (axis + 1) % 3  # laterally ∫σ = 0, ∫ε ≠ 0: apparent E along it is 0
    assert apparent_young_modulus(u, lmbda, mu, mesh, axis=other) == pytest.approx(0, abs=1e-9)


# ---- one quick run of the whole grid (and the 2-rank scaling cell) --------------------
@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    r = _neurofem("bench", "--quick", "--mpi", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    js, = out.glob("*-quick.json")
    md, = out.glob("*-quick.md")
    return json.loads(js.read_text()), md.read_text()


def test_quick_runs_every_cell(quick_run):
    doc, _ = quick_run
    cells = {(r["problem"], r["method"]): r for r in doc["records"]}
    assert set(cells) == {(p, m) for p in PROBLEMS for m in PROBLEMS[p].cells()}
    for (p, m), r in cells.items():
        assert r["status"] in ("ok", "n/a", "skipped"), (p, m, r.get("reason"))
        if r["status"] != "ok":
            assert r["reason"]
            continue
        for key in REQUIRED:
            assert key in r, (p, m, key)
        assert r["ranks"] == 1 and r["steps"] == grid.QUICK_STEPS
        assert 0 <= r["rel_l2"] < math.inf and r["train_s"] > 0 and r["peak_mem_mb"] > 0
        if m == "clif":  # conserved exactly, spikes and energy per step recorded
            assert r["mass_drift"] == 0 and r["mass_drift_max"] == 0
            sp = r["spikes_per_step"]
            assert 0 < sp["neurons_fired_mean"] <= sp["neurons"]
            assert 0 < r["activity"]["mean"] <= 1 and r["energy_ratio"] > 0
            assert r["energy_pj"]["snn"] > 0 and r["rollout_steps"] > 0
        elif m == "circuit":  # training-free: spikes, synaptic events and energy recorded
            assert r["spikes"] > 0 and r["synaptic"] > r["spikes"] and r["energy_pj"] > 0
            assert 0 < r["activity"]["mean"] <= 1 and r["energy_ratio"] is None
        elif METHODS[m].neuron == "ann":
            assert r["activity"] is None and r["energy_ratio"] == 1.0
        else:
            act = r["activity"]
            assert 0 <= act["mean"] <= 1 and len(act["layers"]) == len(r["widths"]) - 2
            assert r["energy_ratio"] > 0
    assert cells[("rve", "vsn-galerkin")]["young"]["hashin_shtrikman"]["lower"] < \
        cells[("rve", "vsn-galerkin")]["young"]["hashin_shtrikman"]["upper"]
    assert "stress_rel" in cells[("rve", "vsn-galerkin")]
    for m in ("ann-autograd", "ann-sp", "vsn-sp"):  # every strong form on problem 6 too
        assert cells[("rve", m)]["status"] == "ok" and "stress_rel" in cells[("rve", m)], m
    assert cells[("rve", "vsn-sp")]["lift_rel_l2"] > 0  # the hard ADF lift of the rollers
    for (p, m), r in cells.items():  # galerkin cells carry their off-node errors
        if r["status"] == "ok" and m.endswith("-galerkin"):
            assert r["offnode"]["rel_l2"] > 0 and r["offnode"]["max_of_range"] > 0, (p, m)
    conv = cells[("lshape", "ann2snn")]["conversion"]
    assert set(conv) == {str(t) for t in grid.CONVERSION_STEPS}
    assert doc["git"]["commit"] and doc["machine"]["cores"] and doc["command"].startswith(
        "neurofem bench --quick")


def test_quick_markdown_matches_json(quick_run):
    doc, md = quick_run
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and " | " in ln]
    for r in doc["records"]:
        row = tables.cell_row(r)
        assert row in rows, row
        if r["status"] == "ok":
            assert f"{100 * r['rel_l2']:.2f}%" in row and f"{r['train_s']:.1f} s" in row
    assert doc["command"] in md and doc["git"]["commit"] in md


def test_quick_records_the_fem_rivals(quick_run):
    """Each steady FE problem's worker times and prices its FEM solve; the table shows it."""
    doc, md = quick_run
    assert set(doc["rivals"]) == {n for n, p in PROBLEMS.items() if p.has_fem_rival}
    for name, fem in doc["rivals"].items():
        assert fem["status"] == "ok" and fem["flops"] > 0 and fem["full_uj"] > 0, name
        assert tables.rival_rows(doc, name)[0] in md.splitlines()
    circuit = [ln for ln in md.split("## Rivals", 1)[1].splitlines() if "circuit" in ln]
    assert circuit  # the circuit cells beside the FEM solve
    lifted = [r for r in doc["records"] if r.get("lift_rel_l2") is not None]
    assert lifted and all(tables.lift_row(r) in md.splitlines() for r in lifted)
    pisnn = md.split("## PISNN", 1)[1].split("\n## ", 1)[0]
    for r in doc["records"]:
        if r["method"] == "clif":
            sp = r["spikes_per_step"]
            row = next(ln for ln in pisnn.splitlines() if ln.startswith(
                f"| {r['number']} {r['problem']} |"))
            assert f"| {r['mass_drift']} |" in row and f"of {sp['neurons']}" in row


def test_quick_scaling_rows(quick_run):
    doc, md = quick_run
    rows = doc["scaling"]
    assert [s["ranks"] for s in rows] == [1, 2]
    assert rows[0]["points"] == rows[1]["points"]  # strong scaling: same total points
    for s in rows:
        assert s["efficiency"] == pytest.approx(s["speedup"] / s["ranks"])
        assert len(s["peak_mem_mb_per_rank"]) == s["ranks"]
    assert f"{100 * rows[1]['efficiency']:.0f}%" in md
