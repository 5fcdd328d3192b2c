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
