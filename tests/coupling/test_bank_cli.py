"""A bank run end to end: config checks, training, resume, report and query (2D, small)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from test_levels import Crash, run_levels

from coupling.cli import main
from coupling.config import parse_run_config
from fem.errors import ConfigError

DOC = """
[mesh]
kind = "rve2d"
size = 0.1

[problem]
type = "poisson"
coefficients = { matrix = 1.0, inclusion = 10.0 }
source = 0.0
bcs = [{ boundary = "x0", type = "dirichlet", value = 0.0 },
       { boundary = "x1", type = "dirichlet", value = 1.0 }]

[parameters]
batch = 2
validation = 1
held_out = 2
[parameters.ranges]
"k.inclusion" = { low = 5.0, high = 50.0, scale = "log" }
"value.x1" = [0.5, 1.5]

[bank]
draws = 2
validated = 1
microstructures = { count = 4, held_out = 2, volume_fraction = [0.1, 0.25], n = [3, 6] }

[network]
neuron = "ann"
hidden = [16, 16]

[training]
steps = 30
lr = 5e-3
dtype = "float64"
log_every = 5
checkpoint_every = 7
progress = false
"""


def doc() -> dict:
    return tomllib.loads(DOC)


@pytest.mark.parametrize("key, value, needle", [
    ("bank.microstructures.volume_fraction", [0.1, 0.6], "bank.microstructures.volume_fraction"),
    ("bank.microstructures.colour", 1, "bank.microstructures.colour"),
    ("bank.microstructures.size", 0.2, "bank.microstructures.size"),
    ("bank.microstructures.count", 0, "bank.microstructures.count"),
    ("bank.draws", 0, "bank.draws"),
    ("bank.features.k", 0, "bank.features.k"),
    ("bank.shuffle", True, "shuffle"),
    ("mesh.kind", "rectangle", "mesh.kind"),
])
def test_bad_bank_settings_name_the_key(key, value, needle):
    """One ConfigError naming the key, before any mesh is built."""

    d = _set(doc(), key, value)
    with pytest.raises(ConfigError) as err:
        parse_run_config(d)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_bank_needs_parameters():
    d = doc()
    d.pop("parameters")
    with pytest.raises(ConfigError, match="bank"):
        parse_run_config(d)


def _set(d: dict, dotted: str, value) -> dict:
    *parents, leaf = dotted.split(".")
    node = d
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return d


def test_resume_of_a_bank_run_equals_the_uninterrupted_run(tmp_path):
    """Killed after the checkpoint of step 14 and resumed, the run ends with the parameters
    and losses of the uninterrupted run (float64, to 1e-12): draws depend on (seed, step)."""
    torch.set_num_threads(1)
    full = run_levels(doc(), tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run_levels(doc(), tmp_path / "cut", callbacks=[Crash(14)])
    resumed = run_levels(doc(), tmp_path / "cut", resume=True)
    for (name, a), (_, b) in zip(full.net.state_dict().items(),
                                 resumed.net.state_dict().items(), strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-12, err_msg=name)
    rows = [[json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
            for d in ("full", "cut")]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]]
    for a, b in zip(*rows, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-12)
        assert b["rel_l2"] == pytest.approx(a["rel_l2"], abs=1e-12)


def test_train_report_and_query_from_the_command_line(tmp_path, capsys):
    """`neurofem train`, `report` (held-out microstructures, rivals' rows) and `query
    --microstructure` on a bank run; every figure computed."""
    cfg = tmp_path / "bank.toml"
    cfg.write_text(DOC.replace("steps = 30", "steps = 200"))
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run)]) == 0
    assert main(["report", str(run), "--points", "1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["rows"]) == 2  # both held-out microstructures
    a = summary["aggregate"]
    assert a["errors"]["median"] < 0.5 * a["lift_errors"]["median"]
    text = (run / "report.md").read_text()
    assert "reduced basis | n/a" in text and "held-out microstructures" in text
    for row in summary["rows"]:
        assert row["features_s"] > 0 and row["network_s"] > 0 and row["fem_s"] > 0
    capsys.readouterr()
    assert main(["query", str(run), "--microstructure", "1", "--param", "k.inclusion=20",
                 "--param", "value.x1=1.0", "--out", str(tmp_path / "q")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["microstructure"] == "held-out 1" and 0 < result["rel_l2"] < 0.5
    assert Path(result["field"]).exists()
    new = tmp_path / "new.toml"
    new.write_text("volume_fraction = 0.12\nn = 3\nseed = 7\n")
    assert main(["query", str(run), "--microstructure", str(new), "--param", "k.inclusion=20",
                 "--param", "value.x1=1.0", "--out", str(tmp_path / "q2")]) == 0
    assert main(["query", str(run), "--microstructure", "9", "--param", "k.inclusion=20",
                 "--param", "value.x1=1.0"]) != 0
    assert "--microstructure" in capsys.readouterr().err


def test_a_bad_bank_ends_with_one_line_from_the_command_line(tmp_path, capsys):
    """`neurofem train` on a bank beyond the packing limit: non-zero exit, one line naming
    the key, nothing written."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(DOC.replace("volume_fraction = [0.1, 0.25]", "volume_fraction = [0.1, 0.59]"))
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "bank.microstructures.volume_fraction" in err[0], err
    assert not (tmp_path / "run").exists()
