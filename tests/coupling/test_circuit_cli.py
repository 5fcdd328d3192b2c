"""`neurofem circuit`: a cold run writes its run directory; a warm start from a trained run
starts at the network's error; bad [circuit] values end with one line naming the key."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tomli_w

from coupling.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = {
    "mesh": {"kind": "lshape", "size": 0.3},
    "problem": {"type": "poisson", "source": 1.0,
                "bcs": [{"boundary": "boundary", "type": "dirichlet", "value": 0.0}]},
    "circuit": {"steps": 1500, "every": 5, "hold": 20},
}


def _config(tmp_path: Path, doc: dict, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(doc))
    return path


# The trained run is made first: in one process, a PyVista render (the circuit report's
# spike-rate picture) followed by `neurofem train` crashes inside the native libraries.


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    """A seconds-long trained L-shape run (its own config)."""
    doc = tomllib.loads((ROOT / "examples" / "lshape-vsn-galerkin.toml").read_text())
    doc["mesh"]["size"] = 0.3
    doc["network"]["hidden"] = [16, 16]
    doc["training"].update({"steps": 150, "log_every": 50, "checkpoint_every": 150,
                            "progress": False})
    base = tmp_path_factory.mktemp("trained")
    run = base / "run"
    assert _main(["train", str(_config(base, doc, "t.toml")), "--out", str(run)]) == 0
    return run, doc


def test_warm_start_refuses_another_mesh(tmp_path, trained, capsys):
    run, doc = trained
    cdoc = {"mesh": {**doc["mesh"], "size": 0.2}, "problem": doc["problem"]}
    code = _main(["circuit", str(_config(tmp_path, cdoc)), "--from", str(run),
                  "--out", str(tmp_path / "c")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mesh" in err[0]


def test_cold_run_writes_metrics_summary_report_and_figures(tmp_path):
    out = tmp_path / "run"
    assert _main(["circuit", str(_config(tmp_path, TINY)), "--out", str(out)]) == 0
    for name in ("config.toml", "metrics.jsonl", "summary.json", "report.md",
                 "convergence.png", "spike_rates.png"):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 0 and records[0]["rel_fem"] == pytest.approx(1.0)
    s = json.loads((out / "summary.json").read_text())
    reached = s["cold"]["reached"]
    assert reached["0.01"]["step"] <= reached["0.001"]["step"]
    assert s["cold"]["final"]["rel_fem"] <= 1e-3
    assert s["cold"]["energy"]["total"]["pj"] > 0
    assert "| cold | 0.001 |" in (out / "report.md").read_text()


@pytest.mark.parametrize("circuit, key", [
    ({"neurons": 0}, "circuit.neurons"),
    ({"neurons": -8}, "circuit.neurons"),
    ({"gains": "manual", "k_i": 64.0, "dt": 0.5}, "circuit.dt"),
    ({"mode": "fixed", "dt": 0.05}, "circuit.dt"),
    ({"gains": "fast"}, "circuit.gains"),
    ({"colour": 1}, "circuit.colour"),
])
def test_bad_circuit_values_end_with_one_line_naming_the_key(tmp_path, capsys, circuit, key):
    doc = {**TINY, "circuit": {**TINY["circuit"], **circuit}}
    out = tmp_path / "run"
    assert _main(["circuit", str(_config(tmp_path, doc)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurofem: error:") and key in err[0], err
    assert not out.exists()


def test_warm_start_begins_at_the_network_and_records_both_starts(tmp_path, trained):
    run, doc = trained
    cdoc = {"mesh": doc["mesh"], "problem": doc["problem"],
            "circuit": {"steps": 1500, "every": 5, "hold": 20, "average": 0.0}}
    out = tmp_path / "circ"
    assert _main(["circuit", str(_config(tmp_path, cdoc)), "--from", str(run),
                  "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    warm0 = next(r for r in records if r["run"] == "warm" and r["step"] == 0)
    # the warm readout starts at the network's values rounded to the γ grid
    assert warm0["rel_fem"] == pytest.approx(s["network"]["rel_fem"], abs=1e-3)
    assert warm0["rel_fem"] < 0.5
    assert s["warm"]["reached"]["0.001"] is not None
    assert s["network"]["wall_s"] > 0 and s["network"]["pj"] > 0
