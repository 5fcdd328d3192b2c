"""benchmarks/bracket.py: P1 vs P2 FEM on the bracket example, small and fast."""

from __future__ import annotations

import json

from benchmarks import bracket


def test_p1_vs_p2_record_on_a_coarse_bracket(tmp_path):
    """Size 0.15, one repeat: both degrees solved by LU and by CG + GAMG to the same
    answer, P2 with more dofs and a larger (less locked) displacement; OUT.json and OUT.md
    written with the command and the machine load."""
    out = tmp_path / "bracket"
    assert bracket.main(["--size", "0.15", "--p1-finer", "0.1", "--repeats", "1",
                         "--out", str(out)]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    coarse, finer = doc["levels"]
    p1, p2 = coarse["P1"], coarse["P2"]
    assert p2["dofs"] > 4 * p1["dofs"] and "P2" not in finer
    assert p2["tip_ux"] > p1["tip_ux"] > 0 and p2["compliance"] > p1["compliance"]
    assert 0.2 < coarse["p1_vs_p2_rel_l2"] < 1.0  # P1 locks badly on this coarse mesh
    assert p2["lu"]["iterations"] <= 1 and p2["cg"]["iterations"] > 1
    text = out.with_suffix(".md").read_text()
    assert "python -m benchmarks.bracket --size 0.15" in text and "load average" in text
    assert "| 0.15 | P2 |" in text and "P1 tetrahedra lock in bending" in text
