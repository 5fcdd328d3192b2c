"""`python -m benchmarks.preconditioned`: the bracket record's script, on a coarse mesh."""

from __future__ import annotations

import json
from pathlib import Path

VARIANT = Path(__file__).resolve().parents[2] / "benchmarks" / "variants" / "rve-1m.toml"


def test_bracket_record_has_the_runs_the_rivals_and_the_verdict(tmp_path):
    from benchmarks import preconditioned

    out = tmp_path / "bracket"
    assert preconditioned.main(["--size", "0.12", "--degree", "1", "--budget", "2",
                                "--options-budget", "0", "--log-every", "5",
                                "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [(r["design"], r["optimizer"]) for r in doc["rows"]] == [
        ("example", "adam"), ("example", "preconditioned"), ("ann", "adam"),
        ("ann", "preconditioned")]
    assert [f["method"] for f in doc["fem"]] == ["lu", "cg"] and doc["fem"][1]["rel_diff"] < 1e-6
    assert all(r["steps"] > 0 and 0 <= r["rel_l2"] for r in doc["rows"])
    assert len(doc["output_scale"]) == 3 and doc["degree"] == 1
    text = out.with_suffix(".md").read_text()
    assert "- Target ≤ 1% displacement" in text and "CG + GAMG, rigid-body" in text


def test_large_rve_record_stops_at_the_error_and_states_memory(tmp_path):
    """The 1.16M-dof RVE's record, on a coarse mesh: chosen rows and FEM rival, the run
    ended at its error, the issue's time and memory verdict per row."""
    from benchmarks import preconditioned

    out = tmp_path / "rve"
    assert preconditioned.main(["--config", str(VARIANT), "--size", "0.25",
                                "--rows", "ann:preconditioned", "--fem", "cg", "--repeat", "1",
                                "--budget", "60", "--stop-at", "0.5", "--every", "5",
                                "--cycles", "2", "--log-every", "5", "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    (row,) = doc["rows"]
    assert row["settings"]["every"] == 5 and row["settings"]["cycles"] == 2
    assert [f["method"] for f in doc["fem"]] == ["cg"]
    assert row["curve"][-1]["rel_l2"] <= 0.5 and row["to_1"] is None
    assert row["train_s"] < 60 and row["peak_mib"] > 0
    text = out.with_suffix(".md").read_text()
    assert "≤ 40 minutes of training, ≤ 8 GB per rank" in text
    assert "preconditioned (every 5, 2 cycles, 5% node batches)" in text  # the variant's batch
