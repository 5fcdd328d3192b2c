"""The wins-and-losses table and the rivals' price rows are generated from records."""

from __future__ import annotations

import json

import pytest

from benchmarks import wins_losses
from benchmarks.rivals import markdown, price_rows

FEM = {"flops": 2e7, "reads": 1e6, "writes": 1e6, "nnz": 5e5, "fem_s": 0.3,
       "events": {"MatLUFactorNum": 1e7}, "mumps_elimination_flops": 4e9}
NET = {"spiking": {"full_pj": 1e9, "compute_pj": 4e8, "neuromorphic_pj": 2e9},
       "ann": {"full_pj": 1.5e9, "compute_pj": 6e8, "neuromorphic_pj": None}}


def _rom(n: int, err: float) -> dict:
    return {"snapshots": n, "dims": [n], "offline_s": 2.0 * n, "online_field_s": 3e-4,
            "errors": {"median": err}, "ops_field": {"mac": 1e5, "acc": 0.0, "reads": 1e5,
                                                     "writes": 1e4}}


def _records(tmp_path, net_err: float = 0.01):
    roms = [_rom(1, 0.02), _rom(2, 4e-4)]
    rows = price_rows(FEM, roms, NET, net_err, 0.02)
    parametric = {"rivals": {"prices": rows, "rom": {"rows": roms},
                             "network": {"train_s": 900.0}}}
    single = {"prices": price_rows(FEM, [], NET, 0.0067, 0.01)}
    (tmp_path / "parametric-rve.json").write_text(json.dumps(parametric))
    (tmp_path / "rivals-demo-rve.json").write_text(json.dumps(single))
    return rows


def test_price_rows_and_markdown_from_counts():
    rows = price_rows(FEM, [_rom(2, 4e-4)], NET, 0.01, 0.02)
    by = {r["method"]: r for r in rows}
    assert by["FEM solve (PETSc log)"]["full_uj"] == pytest.approx(
        (1e7 * 4.6 + 2e6 * 5.0) * 1e-6)
    assert by["FEM solve (MUMPS count)"]["compute_uj"] == pytest.approx(
        (2e7 - 1e7 + 4e9) / 2 * 4.6 * 1e-6)
    assert by["ROM N=2 query"]["full_uj"] == pytest.approx((1e5 * 4.6 + 1.1e5 * 5.0) * 1e-6)
    assert by["spiking network"]["neuromorphic_uj"] == pytest.approx(2e3)
    assert by["equal ANN"]["neuromorphic_uj"] is None
    text = markdown(rows, "t")
    assert "| ROM N=2 query | 0.04% | 0.3 ms |" in text


def test_table_cells_come_from_the_records(tmp_path):
    _records(tmp_path)
    text = wins_losses.table(tmp_path)
    assert "| parametric RVE | field error (median rel. L2) | 1% | ROM N=2 query: 0.04% | " \
        "loses |" in text
    assert "FEM solve costs 9.23e+03 µJ (demo RVE (one problem))" in text
    assert "| parametric RVE | offline cost (training vs snapshots + POD + projection) | 900 s |" \
        in text
    assert "No record yet for: parametric-poisson.json" in text
    _records(tmp_path, net_err=1e-4)  # a better network: the verdict follows the record
    assert "| 0.01% | ROM N=2 query: 0.04% | **wins** |" in wins_losses.table(tmp_path)
    assert "equal ANN: 1.5e+03 µJ | **wins** |" in text


def test_readme_section_between_markers_or_appended():
    body = "| a | b |\n"
    marked = f"intro\n{wins_losses.START}\nold\n{wins_losses.END}\nrest\n"
    assert wins_losses.readme_with(marked, body) == \
        f"intro\n{wins_losses.START}\n{body}{wins_losses.END}\nrest\n"
    appended = wins_losses.readme_with("intro\n", body)
    assert appended.endswith(f"{wins_losses.HEADING}\n\n{wins_losses.START}\n{body}"
                             f"{wins_losses.END}\n")


def test_committed_table_and_readme_are_generated():
    if not wins_losses.TABLE.exists():
        pytest.skip("no table generated yet")
    assert wins_losses.main(["--check"]) == 0


def _circuit(points: int = 4103) -> dict:
    def run(step: int, pj: float, syn: int) -> dict:
        return {"reached": {"0.001": {"step": step, "synaptic": syn}}, "s_per_step": 0.01,
                "final": {"rel_fem": 5e-5},
                "energy_to": {"0.001": {"total": {"pj": pj, "compute_pj": pj / 4},
                                        "neuromorphic_pj": 3 * pj}}}
    return {"system": {"setup_matvecs": 10, "nnz": 1e5, "dofs": 1e4, "setup_s": 0.5},
            "network": {"wall_s": 0.04, "pj": 1e8, "compute_pj": 4e7, "neuromorphic_pj": 2e8,
                        "rel_fem": 0.007, "points": points},
            "cold": run(900, 2e10, 2_000_000), "warm": run(100, 2e9, 200_000)}


def test_circuit_lines_from_its_record(tmp_path):
    _records(tmp_path)
    text = wins_losses.table(tmp_path)
    assert "No record yet for: circuit-rve.json" in text
    (tmp_path / "circuit-rve.json").write_text(json.dumps(_circuit()))
    single = json.loads((tmp_path / "rivals-demo-rve.json").read_text())
    (tmp_path / "rivals-demo-rve.json").write_text(json.dumps({**single, "points": 4103}))
    a = wins_losses.circuit_answer(_circuit())
    setup_full = (1e6 * 4.6 + 3e6 * 5.0 + 2e5 * 5.0) * 1e-6  # 10 products of 1e5 nnz
    assert a["cold"]["time_s"] == pytest.approx(0.5 + 900 * 0.01)
    assert a["warm"]["time_s"] == pytest.approx(0.5 + 100 * 0.01 + 0.04)
    assert a["cold"]["full_uj"] == pytest.approx(2e4 + setup_full)
    assert a["warm"]["neuromorphic_uj"] == pytest.approx(6e3 + 200 + setup_full)
    text = wins_losses.table(tmp_path)
    label = wins_losses.CIRCUIT[0]
    assert f"| {label} | error vs FEM (lumped-mass rel. L2), cold / warm start | 0.001 at " \
        "step 900 / 100 (final 5e-05 / 5e-05) | FEM solve: exact (the reference) | loses |" in text
    assert "| 9.5e+03 ms / 1.54e+03 ms | FEM solve (PETSc log): 300 ms | loses |" in text
    assert "10× fewer synaptic events than cold" in text
    assert "costs less" in text  # warm + network below MUMPS' count of the FEM solve
    (tmp_path / "circuit-rve.json").write_text(json.dumps(_circuit(points=99)))
    assert "different meshes (nodes 99 vs 4103)" in wins_losses.table(tmp_path)
