"""`neurofem demo` / `neurofem report` end to end on a reduced demo (coarse mesh, few steps):
files, the summary line, tables that carry the JSON's numbers, non-blank figures, and
well-formed HTML."""

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from validation.figures import pixel_std

NEUROFEM = [sys.executable, "-m", "coupling.cli"]
QUICK = ["--steps", "20", "--mesh-size", "0.25"]
ENV = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}


def _run(args, **kw):
    return subprocess.run(NEUROFEM + args, capture_output=True, text=True, timeout=240,
                          env=ENV, **kw)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    proc = _run(["demo", "--out", str(out), *QUICK])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc


def test_demo_writes_report_and_summary_line(demo):
    out, proc = demo
    last = proc.stdout.strip().splitlines()[-1]
    assert re.match(r"neurofem demo: displacement error [\d.]+% \(rel\. L2 vs FEM\), stress "
                    r"error [\d.]+%, mean activity [\d.]+%, energy [\d.e+-]+x ANN, \d+ s -> "
                    + re.escape(str(out / "report.html")), last), last
    for name in ("report.html", "report.md", "summary.json", "fields.xdmf", "command.txt"):
        assert (out / name).exists(), name
    s = json.loads((out / "summary.json").read_text())
    for key in ("displacement_rel_l2", "stress_rel_l2", "mean_activity", "energy_ratio",
                "wall_s"):
        assert isinstance(s[key], float) and s[key] > 0, key
    assert s["mesh"]["ranks"] == 1 and s["step"] == 20
    # the FEM reference is in equilibrium to solver tolerance, the barely trained net is not
    fem, net = s["conservation"]["fem"], s["conservation"]["network"]
    assert fem["force_relative"] < 1e-8 and fem["local_l1_relative"] < 1e-8
    assert net["local_l1_relative"] > 1e3 * fem["local_l1_relative"]
    assert fem["traction_jump"]["unmatched_facets"] == 0 and fem["traction_jump"]["facets"] > 0
    # the summary line and the JSON agree
    assert f"{s['displacement_rel_l2']:.2%}" in last and f"{s['mean_activity']:.1%}" in last


def test_figures_are_not_blank(demo):
    out, _ = demo
    s = json.loads((out / "summary.json").read_text())
    names = set(s["figures"])
    assert {"comparison.png", "deformed.png", "von_mises.png", "activity.png", "imbalance.png",
            "phases.png", "curves.png"} <= names
    for name in names:
        assert pixel_std(out / name) > 0.02, name


class _Tables(HTMLParser):
    """Collects table rows and checks that every non-void tag is closed in order."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.row, self.cell, self.images = [], [], None, None, []
        self.errors = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag in ("td", "th"):
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr":
            self.rows.append(self.row)

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def _md_rows(text):
    return [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in text.splitlines() if ln.startswith("|") and "---" not in ln]


def test_report_tables_hold_the_json_numbers(demo):
    out, _ = demo
    s = json.loads((out / "summary.json").read_text())
    parser = _Tables()
    parser.feed((out / "report.html").read_text())
    parser.close()
    assert not parser.errors and not parser.stack
    assert all((out / src).exists() for src in parser.images) and len(parser.images) >= 7
    md = _md_rows((out / "report.md").read_text())
    e, c = s["errors"], s["conservation"]
    expected = {
        "L2 (displacement / field)": e["l2"]["relative"],
        "stress L2": e["stress"]["relative"],
        "energy norm (strain energy)": e["energy"]["relative"],
    }
    for rows in (parser.rows, md):
        byname = {r[0]: r for r in rows}
        for name, value in expected.items():
            assert float(byname[name][2]) == pytest.approx(value, rel=1e-3), name
        assert float(byname["mean"][1]) == pytest.approx(s["activity"]["mean"], rel=1e-3)
        assert float(byname["ratio SNN / ANN"][2]) == pytest.approx(s["energy_ratio"], rel=1e-3)
        assert float(byname["force_relative"][1]) == pytest.approx(c["network"]["force_relative"],
                                                                   rel=1e-3)
        fx = byname["reaction on x1"][2].strip("[]").split(",")[0]
        assert float(fx) == pytest.approx(c["fem"]["reactions"]["x1"][0], rel=1e-3)


def test_report_command_reruns_on_an_existing_run(demo):
    out, _ = demo
    before = json.loads((out / "summary.json").read_text())
    proc = _run(["report", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads((out / "summary.json").read_text())
    # the same checkpoint gives the same numbers (deterministic evaluation)
    assert after["displacement_rel_l2"] == pytest.approx(before["displacement_rel_l2"], rel=1e-9)
    assert after["command"] == before["command"]
    # the demo's end-to-end wall time of this training is kept, not lost
    assert after["wall_s"] == before["wall_s"]
    assert after["timings"]["total_s"] == before["timings"]["total_s"]


def test_report_refuses_a_folder_that_is_no_run(tmp_path):
    proc = _run(["report", str(tmp_path)])
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("neurofem: error:") and "config.toml" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_demo_under_mpi(tmp_path):
    out = tmp_path / "mpi"
    proc = _run(["demo", "--mpi", "2", "--out", str(out), "--steps", "10", "--mesh-size", "0.3"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["mesh"]["ranks"] == 2
    assert s["command"].startswith("neurofem demo --out") and "--mpi 2" in s["command"]
    assert s["conservation"]["fem"]["force_relative"] < 1e-8
    assert s["conservation"]["fem"]["traction_jump"]["unmatched_facets"] == 0
    assert Path(out / "report.html").exists()


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser",
                                                       "google-chrome")),
                    reason="no Chromium here (apt-get install -y chromium)")
def test_report_opens_in_headless_chromium(demo):
    """scripts/check-report-chromium.sh: no console error, images load, tables render."""
    out, _ = demo
    script = Path(__file__).resolve().parents[2] / "scripts" / "check-report-chromium.sh"
    proc = subprocess.run(["bash", str(script), str(out / "report.html")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loads without errors" in proc.stdout


def test_record_demo_tables_hold_the_summary_numbers(demo, tmp_path):
    """benchmarks/record_demo.py: targets checked and every figure read from summary.json."""
    out, _ = demo
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "record_demo.py"
    proc = subprocess.run([sys.executable, str(script), str(out), str(out), "--out",
                           str(tmp_path), "--command", "neurofem demo --quick"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    doc = json.loads((tmp_path / "demo-rve-elasticity.json").read_text())
    md = (tmp_path / "demo-rve-elasticity.md").read_text()
    assert doc["met"]["mean_activity"] == (s["mean_activity"] < 0.6)
    assert f"| stress_rel_l2 | {s['stress_rel_l2']:.4g} | < 0.15 |" in md
    assert doc["variants"][0]["changes"] == {}  # the demo against itself differs nowhere
    assert f"{100 * s['displacement_rel_l2']:.2f}%" in md
    bad = subprocess.run([sys.executable, str(script), str(tmp_path / "nothing")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "summary.json not found" in bad.stderr.strip().splitlines()[-1]
