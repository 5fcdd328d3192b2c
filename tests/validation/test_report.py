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
    for name in ("report.html", "report.md", "summary.json", "fields.xdmf", "fields.vtu",
                 "command.txt"):
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
            "phases.png", "curves.png", "stress_error.png"} <= names
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
    assert s["run"]["train_ranks"] == 2 and s["run"]["report_ranks"] == 2
    assert s["command"].startswith("mpiexec -n 2 neurofem demo --out")
    md = (out / "report.md").read_text()
    assert "| ranks (training) | 2 |" in md and "| ranks (report) | 2 |" in md
    assert "mpiexec -n 2 neurofem demo --out" in (out / "report.html").read_text()
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


def test_report_header_says_how_the_run_was_made(demo):
    out, _ = demo
    s = json.loads((out / "summary.json").read_text())
    run = s["run"]
    assert run["steps_done"] == 20 and run["steps_planned"] == 20 and run["complete"] is True
    assert s["complete"] is True and not s["headline"].startswith("INCOMPLETE")
    assert run["settings"]["neuron"] == "vsn" and run["settings"]["residual"] == "galerkin"
    assert run["settings"]["lr"] == pytest.approx(0.01)
    assert run["train_ranks"] == 1 and run["report_ranks"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", run["date"])
    for pkg in ("neurofem", "dolfinx", "torch"):
        assert run["versions"][pkg], pkg
    md = (out / "report.md").read_text()
    assert "| steps done / planned | 20 of 20 |" in md
    assert f"| torch version | {run['versions']['torch']} |" in md


FIELDS = ("displacement_fem", "displacement_network", "displacement_error",
          "displacement_error_magnitude", "activity")
CELL_FIELDS = {"strain_fem": 9, "strain_network": 9, "stress_fem": 9, "stress_network": 9,
               "von_mises_fem": 1, "von_mises_network": 1, "von_mises_error": 1,
               "stress_error": 1, "imbalance_fem": 1, "imbalance_network": 1, "phase": 1}


def test_fields_read_back_with_meshio_and_pyvista(demo):
    """fields.vtu holds every named field for meshio and pyvista; fields.xdmf stays."""
    import meshio
    import numpy as np
    import pyvista as pv

    out, _ = demo
    s = json.loads((out / "summary.json").read_text())
    assert s["field_files"] == ["fields.vtu", "fields.xdmf"]
    assert "Name=\"stress_fem\"" in (out / "fields.xdmf").read_text()
    m = meshio.read(out / "fields.vtu")
    g = pv.read(out / "fields.vtu")
    assert g.n_cells == s["mesh"]["cells"] == sum(len(c.data) for c in m.cells)
    for name in FIELDS:
        assert np.array_equal(np.asarray(m.point_data[name]), np.asarray(g.point_data[name]))
    assert m.point_data["displacement_fem"].shape == (g.n_points, 3)
    for name, ncomp in CELL_FIELDS.items():
        a = np.concatenate(m.cell_data[name])
        assert a.reshape(len(a), -1).shape[1] == ncomp, name
        assert np.array_equal(a.reshape(len(a), -1), np.asarray(g.cell_data[name]).reshape(
            len(a), -1)), name
    # the numbers are the physics: stress = C(strain) per phase, von Mises of the FEM stress
    sig = g.cell_data["stress_fem"].reshape(-1, 3, 3)
    dev = sig - np.trace(sig, axis1=1, axis2=2)[:, None, None] / 3 * np.eye(3)
    vm = np.sqrt(1.5 * np.einsum("cij,cij->c", dev, dev))
    assert np.allclose(vm, g.cell_data["von_mises_fem"], rtol=1e-8, atol=1e-12)
    assert np.allclose(sig, np.transpose(sig, (0, 2, 1)))
    phase = g.cell_data["phase"]
    vol = g.compute_cell_sizes(length=False, area=False)["Volume"]
    per = sorted(vol[phase == t].sum() / vol.sum() for t in np.unique(phase))
    assert len(per) == 2  # the phase tags give the phase volume fractions of the report
    assert per[0] == pytest.approx(s["mesh"]["phases"]["inclusion"]["fraction"], rel=1e-6)
    err = g.point_data["displacement_network"] - g.point_data["displacement_fem"]
    assert np.allclose(err, g.point_data["displacement_error"], atol=1e-12)


def test_figures_have_no_colorbar_overlap_and_their_own_ranges(demo):
    """Checked on the render: each colour bar's title and tick labels drawn alone do not
    touch; activity spans its data, imbalance shares one log scale with FEM first."""
    import meshio
    import numpy as np

    out, _ = demo
    s = json.loads((out / "summary.json").read_text())
    checks = s["figure_checks"]
    assert {"comparison.png", "von_mises.png", "stress_error.png", "activity.png",
            "imbalance.png", "deformed.png"} <= set(checks)
    for name, bars in checks.items():
        for b in bars:
            assert b["title_px"] > 200 and b["label_px"] > 100, (name, b)
            assert b["overlap_px"] == 0, (name, b)
    m = meshio.read(out / "fields.vtu")
    act = m.point_data["activity"]
    lo, hi = checks["activity.png"][0]["clim"]
    assert (lo, hi) == pytest.approx((act.min(), act.max())) and (lo, hi) != (0.0, 1.0)
    fem, net = checks["imbalance.png"]
    assert "FEM" in fem["title"] and "network" in net["title"]
    assert fem["log"] and net["log"] and fem["clim"] == net["clim"]
    imb = np.abs(np.concatenate(m.cell_data["imbalance_network"]))
    assert fem["clim"][1] == pytest.approx(imb.max())
    se = np.concatenate(m.cell_data["stress_error"])
    assert checks["stress_error.png"][0]["clim"] == pytest.approx([se.min(), se.max()])
    vm = checks["von_mises.png"][0]["clim"]
    assert vm[1] == pytest.approx(max(np.concatenate(m.cell_data["von_mises_fem"]).max(),
                                      np.concatenate(m.cell_data["von_mises_network"]).max()))
    ranges = {tuple(bars[0]["clim"]) for bars in checks.values()}
    assert len(ranges) >= 5  # every quantity on its own range


def test_train_and_report_under_mpi_flag_an_incomplete_run(tmp_path):
    """`mpiexec -n 2 neurofem train` (coarse demo, 10 steps) then, with the config asking for
    20 steps (a run stopped at step 10 of 20), `mpiexec -n 2 neurofem report`: 2 ranks,
    a reproduce command that starts with `mpiexec -n 2`, and the run flagged incomplete in
    the summary line, the report and summary.json."""
    root = Path(__file__).resolve().parents[2]
    cfg = (root / "examples" / "demo-rve-elasticity.toml").read_text()
    cfg = cfg.replace("size = 0.1\n", "size = 0.3\n")
    (tmp_path / "c.toml").write_text(cfg)
    run = tmp_path / "run"
    mpi = [str(Path(sys.executable).parent / "mpiexec"), "-n", "2"]
    proc = subprocess.run(mpi + NEUROFEM + ["train", str(tmp_path / "c.toml"), "--out", str(run),
                                            "--steps", "10"],
                          capture_output=True, text=True, timeout=240, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = (run / "config.toml").read_text()
    assert "steps = 10\n" in text
    (run / "config.toml").write_text(text.replace("steps = 10\n", "steps = 20\n"))
    proc = subprocess.run(mpi + NEUROFEM + ["report", str(run)], capture_output=True, text=True,
                          timeout=240, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    flag = "INCOMPLETE run (stopped at step 10 of 20)"
    assert proc.stderr.strip().splitlines()[-1].startswith(f"neurofem: {flag}: ")
    s = json.loads((run / "summary.json").read_text())
    assert s["complete"] is False and s["run"]["steps_planned"] == 20 and s["step"] == 10
    assert s["headline"].startswith(flag)
    assert s["run"]["train_ranks"] == 2 and s["run"]["report_ranks"] == 2
    assert s["mesh"]["ranks"] == 2
    assert s["command"] == (f"mpiexec -n 2 neurofem train {run}/config.toml --out {run} "
                            f"--force && mpiexec -n 2 neurofem report {run}")
    md, page = (run / "report.md").read_text(), (run / "report.html").read_text()
    assert flag in md and flag in page and "| ranks (report) | 2 |" in md
    assert s["command"] in md
