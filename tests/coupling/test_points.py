"""`neurofem points` and Discretisation.evaluate_at: values at nodes, outside points, ranks."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from coupling.cli import main
from coupling.runs.network import load_trained
from meshes.fenics import MPI

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path) -> Path:
    """A short L-shape run (float64), trained once per test module."""
    run = tmp_path / "run"
    if not (run / "config.toml").exists():
        doc = tomllib.loads((ROOT / "examples" / "lshape-vsn-galerkin.toml").read_text())
        doc["mesh"]["size"] = 0.25
        doc["network"]["hidden"] = [16, 16]
        doc["training"].update({"steps": 30, "dtype": "float64", "log_every": 10,
                                "checkpoint_every": 10, "progress": False})
        cfg = tmp_path / "lshape.toml"
        cfg.write_text(_toml(doc))
        assert main(["train", str(cfg), "--out", str(run)]) == 0
    return run


def _toml(doc: dict) -> str:
    """A plain TOML writer for the example's tables (numbers, strings, lists, bcs)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = []
    for name, table in doc.items():
        if not isinstance(table, dict):
            lines.insert(0, f"{name} = {val(table)}")
            continue
        lines.append(f"[{name}]")
        for k, v in table.items():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                lines += [f"[[{name}.{k}]]"] + [f"{a} = {val(b)}" for d in v for a, b in d.items()]
            else:
                lines.append(f"{k} = {val(v)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("points"))


def test_values_at_the_nodes_equal_the_nodal_field(run, tmp_path):
    """Both readings equal the nodal field at the nodes (the raw network to round-off)."""
    tr = load_trained(run, MPI.COMM_SELF)
    disc, net = tr.disc, tr.net
    x = disc.x_nodes.numpy()[: disc.n_owned]
    nodal = disc.evaluate(net).detach().numpy()
    for mode in ("network", "interpolant"):
        got = disc.evaluate_at(net, x, mode)
        assert np.abs(got - nodal).max() < 1e-12, mode
    pts = tmp_path / "pts.csv"
    np.savetxt(pts, x[:50], delimiter=",", header="x,y", comments="")
    out = tmp_path / "vals.csv"
    assert main(["points", str(run), "--file", str(pts), "--out", str(out)]) == 0
    vals = np.loadtxt(out, delimiter=",", skiprows=1)
    assert vals.shape == (50, 3) and np.abs(vals[:, 2] - nodal[:50]).max() < 1e-12


def test_outside_point_is_one_line(run, tmp_path, capsys):
    pts = tmp_path / "pts.csv"
    pts.write_text("-0.5,-0.5\n0.5,0.5\n")  # (0.5, 0.5) lies in the removed quadrant
    assert main(["points", str(run), "--file", str(pts), "--out", str(tmp_path / "v.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "point 1 (0.5, 0.5) is outside the mesh" in err, err
    assert not (tmp_path / "v.csv").exists()


def test_two_ranks_equal_serial(tmp_path):
    """`mpiexec -n 2 neurofem points` writes the serial values (both modes); it spawns its
    own mpiexec, so it runs in the serial pass (marked mpi it was skipped in both passes)."""
    run = _run(tmp_path)
    rng = np.random.default_rng(1)
    p = rng.uniform(-1, 1, (400, 2))
    p = p[~((p[:, 0] > -0.01) & (p[:, 1] > -0.01))]  # inside the L-shape
    pts = tmp_path / "pts.csv"
    np.savetxt(pts, p, delimiter=",")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    exe = [sys.executable, "-m", "coupling.cli"]
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    for mode in ("network", "interpolant"):
        outs = []
        for n in (1, 2):
            out = tmp_path / f"{mode}{n}.csv"
            cmd = ([mpiexec, "-n", "2"] if n == 2 else []) + exe + [
                "points", str(run), "--file", str(pts), "--mode", mode, "--out", str(out)]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            assert res.returncode == 0, res.stderr[-2000:]
            outs.append(np.loadtxt(out, delimiter=",", skiprows=1))
        assert np.abs(outs[0] - outs[1]).max() < 1e-12, mode


def test_forward_in_chunks_is_one_forward():
    """The off-node probe's chunked evaluation equals one pass (to round-off), for spiking
    nets too."""
    import spiking
    from coupling.pointwise import forward_in_chunks

    net = spiking.mlp_from_config({"neuron": "vsn", "hidden": [16, 16], "seed": 1}, in_dim=3,
                                  dtype=torch.float64)
    x = torch.rand(1000, 3, dtype=torch.float64)
    with torch.no_grad():
        whole = net(x)
    # Not bit for bit: BLAS blocks a 77-row and a 1000-row product differently (per CPU and
    # thread count), so a few outputs differ in the last bits (~1e-16 measured on an EPYC).
    # Float64 round-off of a 3-16-16-1 network is far below 1e-12; a spike flipped by it
    # would show as an O(threshold) difference and fail this tolerance.
    torch.testing.assert_close(forward_in_chunks(net, x, chunk=77), whole, rtol=1e-12,
                               atol=1e-12)
