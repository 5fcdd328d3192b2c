"""`neurofem train` / `resume` / `report` on a PISNN run (model = "clif",
examples/heat1d-clif.toml): the resumed run's records and checkpoint, and a report whose
numbers are the checkpoint's integer rollout (equal to the run's rollout.json), whose
tables carry the JSON's numbers, whose drift is 0 quanta, and whose figures are not
blank."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from coupling.cli import main
from fem.config import load_toml
from validation.figures import pixel_std

EXAMPLE = Path(__file__).parents[2] / "examples" / "heat1d-clif.toml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """20 steps, resumed to 45 (log_every 25: a record at 25 without a rollout), reported."""
    out = tmp_path_factory.mktemp("clif") / "run"
    assert main(["train", str(EXAMPLE), "--out", str(out), "--steps", "20"]) == 0
    first = json.loads((out / "rollout.json").read_text())
    assert main(["resume", str(out), "--steps", "45"]) == 0
    rollout = json.loads((out / "rollout.json").read_text())
    assert main(["report", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return out, first, rollout, summary


def _md_tables(text: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in text.splitlines() if ln.startswith("|") and "---" not in ln]
    return {r[0]: r[1:] for r in rows}


def _html_tables(text: str) -> dict[str, list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    cells = [re.findall(r"<t[dh]>(.*?)</t[dh]>", r) for r in rows]
    return {c[0]: c[1:] for c in cells if c}


def test_resume_continues_a_clif_run(run):
    out, first, rollout, _ = run
    records = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [20, 25, 45]
    assert "activity" not in records[1] and records[2]["final"]  # 25: no rollout measured
    assert sorted(p.name for p in out.glob("ckpt-*.pt"))[-1] == "ckpt-000000045.pt"
    assert load_toml(out / "config.toml")["training"]["steps"] == 45
    # 25 more steps of training bring the rollout closer to the exact solution
    assert rollout["summary"]["rel_l2"] < first["summary"]["rel_l2"]
    assert rollout["summary"]["mass_drift"] == 0 == first["summary"]["mass_drift"]


def test_report_is_the_checkpoints_rollout(run):
    out, _, rollout, s = run
    r = rollout["summary"]
    assert s["model"] == "clif" and s["step"] == 45
    # the report rolls the checkpoint out again: the run's own rollout, number for number
    assert s["rel_l2"] == r["rel_l2"] and s["rel_l2_max"] == r["rel_l2_max"]
    assert s["rel_l2_max"] == max(v for v in rollout["rel_l2"] if v is not None)
    assert s["mass_drift"] == 0 == r["mass_drift"] and s["mass_drift_max"] == 0
    q = s["rollout"]
    for key in ("total_quanta", "boundary_quanta", "source_quanta"):
        assert q[key] == r[key], key
    assert q["total_quanta"] == rollout["total_quanta"][-1]
    # conservation in quanta: what is in the domain is what came in (boundary, source)
    assert q["initial_quanta"] + q["boundary_quanta"] + q["source_quanta"] == q["total_quanta"]
    assert q["source_quanta"] > 0 > q["boundary_quanta"]  # heated inside, cooled at x = 0, 1
    spikes = q["spikes_per_step"]
    assert spikes["quanta_moved_mean"] == pytest.approx(
        sum(rollout["spikes_quanta_moved"]) / q["rollout_steps"], rel=1e-12)
    assert s["mean_activity"] == pytest.approx(spikes["neurons_fired_mean"] / spikes["neurons"])
    en = q["energy"]
    assert en["ratio"] == pytest.approx(en["spiking_pj"] / en["float_fv_pj"], rel=1e-12)
    assert s["energy_ratio"] == en["ratio"] == r["energy"]["ratio"]
    assert s["training"]["training"]["lr"] == 0.01 and s["training"]["clif"]["window"] == 20


def test_report_files_and_figures(run):
    out, _, _, s = run
    for name in ("report.html", "report.md", "summary.json", "clif_fields.npz"):
        assert (out / name).exists(), name
    assert set(s["figures"]) == {"rollout.png", "fields.png", "curves.png"}
    for name in s["figures"]:
        assert pixel_std(out / name) > 0.02, name
    html = (out / "report.html").read_text()
    assert all(f'src="{name}"' in html for name in s["figures"])


@pytest.mark.parametrize("parse, name", [(_md_tables, "report.md"),
                                         (_html_tables, "report.html")])
def test_report_tables_hold_the_json_numbers(run, parse, name):
    out, _, _, s = run
    t = parse((out / name).read_text())
    q, en = s["rollout"], s["rollout"]["energy"]
    close = {"rel. L2 (final)": s["rel_l2"], "rel. L2 (max over the rollout)": s["rel_l2_max"],
             "activity (fraction of neurons firing per step)": s["mean_activity"],
             "quanta moved per step (mean)": q["spikes_per_step"]["quanta_moved_mean"],
             "training.lr": 0.01}
    for label, value in close.items():
        assert float(t[label][0]) == pytest.approx(value, rel=1e-3), label
    exact = {"mass drift (final)": 0, "mass drift (max magnitude over the rollout)": 0,
             "steps trained": 45, "boundary quanta (net in)": q["boundary_quanta"],
             "source quanta": q["source_quanta"], "total quanta (final)": q["total_quanta"]}
    for label, value in exact.items():
        assert int(t[label][0]) == value, label
    spiking, fv, ratio = (float(v) for v in t["per step (pJ)"])
    assert (spiking, fv, ratio) == pytest.approx(
        (en["spiking_pj"], en["float_fv_pj"], en["ratio"]), rel=1e-3)
    assert s["headline"].startswith(f"rel. L2 error {s['rel_l2']:.2%}")
