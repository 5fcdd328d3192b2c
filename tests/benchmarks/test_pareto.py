"""`neurofem bench --pareto lshape --quick`: the sweep runs end to end in the suite and
writes its JSON, Markdown and PNG (error vs energy ratio in both conventions)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.pareto import front

ROOT = Path(__file__).resolve().parents[2]


def test_quick_pareto_sweep_writes_json_markdown_and_png(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "coupling.cli", "bench", "--pareto", "lshape",
                           "--quick", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "pareto-lshape-quick.json").read_text())
    png = (tmp_path / "pareto-lshape-quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    md = (tmp_path / "pareto-lshape-quick.md").read_text()
    assert len(doc["records"]) == 3 and "load average" in doc["uptime"]
    for r in doc["records"]:
        assert 0 < r["rel_l2"] < 1 and 0 < r["ratio_compute"] < r["ratio"]
        assert 0 < r["floor"] <= r["ratio"] and r["floor_compute"] <= r["ratio_compute"]
        assert f"{r['ratio']:.3f}" in md and f"{r['ratio_compute']:.3f}" in md
    enc = next(r for r in doc["records"] if r["design"].get("encoder"))
    base = next(r for r in doc["records"] if r["label"] == "base")
    assert enc["floor"] < base["floor"]  # events into the first layer lower the floor
    assert doc["front"]["full"] and set(doc["front"]["full"]) <= {r["label"] for r in
                                                                   doc["records"]}


def test_front_keeps_only_non_dominated_designs():
    recs = [{"label": "a", "rel_l2": 0.01, "ratio": 0.5}, {"label": "b", "rel_l2": 0.02,
            "ratio": 0.3}, {"label": "c", "rel_l2": 0.03, "ratio": 0.6},
            {"label": "d", "rel_l2": None, "ratio": 0.1}]
    assert front(recs, "ratio") == ["a", "b"]


def test_unknown_problem_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "coupling.cli", "bench", "--pareto", "nope",
                           "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "bench --pareto 'nope'" in proc.stderr


@pytest.mark.parametrize("name", ["lshape", "bracket", "cube-spheres", "rve"])
def test_problem_configs_exist(name):
    from benchmarks.pareto import PROBLEMS

    assert PROBLEMS[name].is_file()
