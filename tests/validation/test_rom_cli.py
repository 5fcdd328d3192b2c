"""`neurofem rom`: the reduced-basis rival measured at a config's held-out points."""

from __future__ import annotations

import json

import pytest

from coupling.cli import main

CONFIG = """
[mesh]
kind = "rectangle"
size = 0.25
[problem]
type = "poisson"
coefficients = 1.0
source = "1 + x*y"
[[problem.bcs]]
boundary = "x0"
type = "dirichlet"
value = 0.0
[[problem.bcs]]
boundary = "x1"
type = "dirichlet"
value = "y"
[[problem.bcs]]  # keeps the load form non-empty at source = 0 (a known limitation)
boundary = "y0"
type = "neumann"
value = 0.5
[parameters]
held_out = 3
[parameters.ranges]
k = { low = 0.5, high = 5.0, scale = "log" }
source = [0.0, 2.0]
"value.x0" = [-1.0, 1.0]
[network]
neuron = "vsn"
hidden = [8]
[residual]
kind = "galerkin"
[training]
steps = 2
"""


def test_rom_cli_rows_and_arrays(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "rom"
    assert main(["rom", str(cfg), "--snapshots", "1", "2", "--out", str(out)]) == 0
    doc = json.loads((out / "rom.json").read_text())
    assert [r["snapshots"] for r in doc["rows"]] == [1, 2]
    assert doc["held_out"] == 3 and doc["fem"]["flops"] > 0
    two = doc["rows"][1]  # k enters as 1/k: two snapshots span every channel
    assert two["errors"]["max"] < 1e-10 and two["energy_error"]["bound_holds"]
    assert (out / "rom-N2.npz").exists() and "| 2 |" in (out / "rom.md").read_text()


@pytest.mark.parametrize("args", [["--snapshots", "0"], ["--snapshots", "5000"]])
def test_rom_cli_bad_input_is_one_line(tmp_path, capsys, args):
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG)
    assert main(["rom", str(cfg), *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--snapshots" in err[0]


def test_rom_cli_needs_parameters(tmp_path, capsys):
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG.split("[parameters]")[0] + "[network]" + CONFIG.split("[network]")[1])
    assert main(["rom", str(cfg), "--snapshots", "1", "--out", str(tmp_path / "o")]) == 2
    assert "parameters" in capsys.readouterr().err


def test_rom_rows_in_report_and_query(tmp_path, capsys):
    cfg = tmp_path / "p.toml"
    cfg.write_text(CONFIG.replace("steps = 2", "steps = 3\ncompile = false"))
    run = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(run)]) == 0
    assert main(["rom", str(cfg), "--snapshots", "2", "--out", str(run / "rom")]) == 0
    assert main(["report", str(run)]) == 0
    assert "## Rival: reduced basis" in (run / "report.md").read_text()
    capsys.readouterr()
    assert main(["query", str(run), "--param", "k=2", "--param", "source=1", "--param",
                 "value.x0=0.3", "--rom", str(run / "rom" / "rom-N2.npz")]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["rom"]["rel_l2"] < 1e-10 and result["rom"]["full_pj"] > 0
    assert "ROM N=2" in out.err
    assert main(["query", str(run), "--param", "k=2", "--param", "source=1", "--param",
                 "value.x0=0.3", "--rom", str(tmp_path / "none.npz")]) == 2
