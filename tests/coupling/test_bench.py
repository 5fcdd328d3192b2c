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

from coupling import bench
from coupling.bench import METHODS, PROBLEMS, NotApplicable

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
    for m in bench.NETWORK_METHODS:
        try:
            docs[m] = bench.method_config(p, m)
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
    from coupling.clif_config import parse_clif_config
    from fem.config import load_toml

    p = PROBLEMS[problem]
    own = load_toml(bench.EXAMPLES / p.clif)
    for quick in (False, True):
        doc = bench.method_config(p, "clif", quick=quick)
        assert doc["model"] == "clif" and doc["problem"] == own["problem"]
        cfg = parse_clif_config(doc)  # the C-LIF trainer accepts it
        assert cfg.training.steps == (bench.QUICK_STEPS if quick else own["training"]["steps"])
    assert bench.method_config(p, "clif", steps=7)["training"]["steps"] == 7
    with pytest.raises(NotApplicable, match="clif"):
        bench.method_config(PROBLEMS["rve"], "clif")
    if p.cells() == ("clif",):
        with pytest.raises(NotApplicable, match="C-LIF"):
            bench.method_config(p, "vsn-galerkin")


def test_not_applicable_cells_are_the_documented_ones():
    """Galerkin has no space-time form; elasticity trains with galerkin only."""
    for p in ("burgers1d", "heat1d"):
        with pytest.raises(NotApplicable, match="space-time"):
            bench.method_config(PROBLEMS[p], "vsn-galerkin")
    for m in ("ann-autograd", "ann-sp", "vsn-sp", "deepxde"):
        with pytest.raises(NotApplicable):
            bench.method_config(PROBLEMS["rve"], m)


@given(st.dictionaries(st.sampled_from("abc"), st.one_of(st.integers(), st.none(),
       st.dictionaries(st.sampled_from("xy"), st.integers(), max_size=2)), max_size=3))
def test_merge_overrides_and_removes(over):
    base = {"a": {"x": 1, "z": 3}, "b": 2}
    out = bench.merge(base, over)
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
    got = bench.time_to(records, target)
    hits = [0.5 * i for i, e in enumerate(errors) if e <= target]
    assert got == (hits[0] if hits else None)


def test_select_and_bad_only():
    assert len(bench.select([])) == sum(len(p.cells()) for p in PROBLEMS.values())
    assert {m for _, m in bench.select([])} == set(METHODS)
    assert bench.select(["clif"]) == [("heat1d", "clif"), ("laplace2d", "clif"),
                                      ("diffusion3d", "clif")]
    with pytest.raises(bench.BenchError, match="laplace2d.*no cell 'ann-sp'"):
        bench.select(["laplace2d/ann-sp"])
    assert bench.select(["lshape/vsn-galerkin"]) == [("lshape", "vsn-galerkin")]
    assert {m for _, m in bench.select(["deepxde"])} == {"deepxde"}
    with pytest.raises(bench.BenchError, match="poison"):
        bench.select(["poison"])


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    r = _neurofem("bench", "--only", "lshape/nope", "--out", str(tmp_path), timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "neurofem: error: --only 'lshape/nope': unknown method 'nope'"]


def test_deepxde_absent_is_skipped(monkeypatch, tmp_path):
    from coupling import bench_peers

    monkeypatch.setattr(bench_peers, "available", lambda: False)
    out = bench_peers.run_deepxde(PROBLEMS["lshape"], {}, tmp_path, comm=None)
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
        assert r["ranks"] == 1 and r["steps"] == bench.QUICK_STEPS
        assert 0 <= r["rel_l2"] < math.inf and r["train_s"] > 0 and r["peak_mem_mb"] > 0
        if m == "clif":  # conserved exactly, spikes and energy per step recorded
            assert r["mass_drift"] == 0 and r["mass_drift_max"] == 0
            sp = r["spikes_per_step"]
            assert 0 < sp["neurons_fired_mean"] <= sp["neurons"]
            assert 0 < r["activity"]["mean"] <= 1 and r["energy_ratio"] > 0
            assert r["energy_pj"]["snn"] > 0 and r["rollout_steps"] > 0
        elif METHODS[m].neuron == "ann":
            assert r["activity"] is None and r["energy_ratio"] == 1.0
        else:
            act = r["activity"]
            assert 0 <= act["mean"] <= 1 and len(act["layers"]) == len(r["widths"]) - 2
            assert r["energy_ratio"] > 0
    assert cells[("rve", "vsn-galerkin")]["young"]["hashin_shtrikman"]["lower"] < \
        cells[("rve", "vsn-galerkin")]["young"]["hashin_shtrikman"]["upper"]
    assert "stress_rel" in cells[("rve", "vsn-galerkin")]
    conv = cells[("lshape", "ann2snn")]["conversion"]
    assert set(conv) == {str(t) for t in bench.CONVERSION_STEPS}
    assert doc["git"]["commit"] and doc["machine"]["cores"] and doc["command"].startswith(
        "neurofem bench --quick")


def test_quick_markdown_matches_json(quick_run):
    doc, md = quick_run
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and " | " in ln]
    for r in doc["records"]:
        row = bench.cell_row(r)
        assert row in rows, row
        if r["status"] == "ok":
            assert f"{100 * r['rel_l2']:.2f}%" in row and f"{r['train_s']:.1f} s" in row
    assert doc["command"] in md and doc["git"]["commit"] in md
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
