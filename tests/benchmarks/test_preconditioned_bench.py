"""`python -m benchmarks.preconditioned`: the bracket record's script, on a coarse mesh."""

from __future__ import annotations

import json


def test_bracket_record_has_the_runs_the_rivals_and_the_verdict(tmp_path):
    from benchmarks import preconditioned

    out = tmp_path / "bracket"
    assert preconditioned.main(["--size", "0.12", "--degree", "1", "--budget", "1",
                                "--options-budget", "0", "--log-every", "5",
                                "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    assert [(r["design"], r["optimizer"]) for r in doc["rows"]] == [
        ("example", "adam"), ("example", "preconditioned"), ("ann", "adam"),
        ("ann", "preconditioned")]
    assert [f["method"] for f in doc["fem"]] == ["lu", "cg"] and doc["cg_rel_diff"] < 1e-6
    assert all(r["steps"] > 0 and 0 <= r["rel_l2"] for r in doc["rows"])
    assert len(doc["output_scale"]) == 3 and doc["degree"] == 1
    text = out.with_suffix(".md").read_text()
    assert "- Target ≤ 1% displacement" in text and "CG + GAMG, rigid-body" in text
