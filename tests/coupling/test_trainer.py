"""The trainer: Galerkin consistency, accuracy of the acceptance runs, configs, resume."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from coupling.cli import main
from coupling.config import parse_run_config
from coupling.discretisation import discretise
from coupling.runs.network import Trainer
from meshes.fenics import MPI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def example(name: str) -> dict:
    with open(EXAMPLES / name, "rb") as fh:
        return tomllib.load(fh)


def small_lshape(steps: int = 20, dtype: str = "float64", **training) -> dict:
    doc = example("lshape-vsn-galerkin.toml")
    doc["mesh"]["size"] = 0.25
    doc["network"]["hidden"] = [16, 16]
    doc["training"].update({"steps": steps, "dtype": dtype, "log_every": 5,
                            "checkpoint_every": 5, "progress": False, **training})
    return doc


class Table(torch.nn.Module):
    """A 'network' that returns given nodal values: u is its only parameter."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__()
        self.u = torch.nn.Parameter(torch.as_tensor(values, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.u.reshape(len(x), -1)


@pytest.mark.parametrize("doc_name", ["lshape-vsn-galerkin.toml", "elasticity"])
def test_galerkin_energy_gradient_vanishes_at_fem_solution(doc_name):
    """∂E/∂u = Ku − b on the free dofs is 0 (to 1e-10 of |b|) at the DOLFINx solution."""
    if doc_name == "elasticity":
        doc = {"mesh": {"kind": "hollow_sphere", "size": 0.25, "eighth": True},
               "problem": {"type": "elasticity", "degree": 1,
                           "materials": {"domain": {"E": 1.0, "nu": 0.3}},
                           "bcs": [{"boundary": b, "type": "roller", "component": i}
                                   for i, b in enumerate(("x0", "y0", "z0"))]
                           + [{"boundary": "inner", "type": "pressure", "value": 1.0}]},
               "network": {"neuron": "ann"}, "residual": {"kind": "galerkin"}}
    else:
        doc = small_lshape()
    cfg = parse_run_config(doc)
    dmesh = cfg.mesh.build(MPI.COMM_SELF)
    from fem.problems import build_problem

    problem = build_problem(dmesh, cfg.problem)
    disc = discretise(problem, "galerkin", dtype=torch.float64, lift="none")  # u = the dofs
    uh = problem.solve().u
    res = disc.residual
    net = Table(uh.x.array.copy())
    loss, _ = res.loss(net)
    loss.backward()
    g = net.u.grad.numpy()
    scale = np.abs(disc.operators.b.numpy()).max()
    assert np.abs(g).max() < 1e-10 * scale
    # and the energy rises when the solution is perturbed on a free dof
    free = np.setdiff1d(np.arange(len(g)), disc.operators.dirichlet_dofs)
    bumped = uh.x.array.copy()
    bumped[free[len(free) // 2]] += 1e-2
    assert res.loss(Table(bumped))[0].item() > loss.item()


BAD_CONFIGS = [
    (("residual", "kind"), "galerkn", "residual.kind"),
    (("residual", "neighbours"), "all", "residual.neighbours"),
    (("residual", "rings"), 3, "residual.rings"),
    (("residual", "order"), 4, "residual.order"),
    (("boundary", "mode"), "hrad", "boundary.mode"),
    (("boundary", "weight"), -1.0, "boundary.weight"),
    (("training", "lr"), -0.1, "training.lr"),
    (("training", "steps"), 0, "training.steps"),
    (("training", "dtype"), "float16", "training.dtype"),
    (("training", "schedule"), "warmup", "training.schedule"),
    (("training", "batch"), -3, "training.batch"),  # cells or rows: not negative
    (("training", "stepz"), 10, "training.stepz"),
    (("training", "seed"), "one", "training.seed"),
    (("network", "hidden"), 64, "network.hidden"),
    (("network", "neuron"), "izhikevich", "network.neuron"),
    (("network", "in_dim"), 3, "network.in_dim"),
    (("problem", "type"), "poison", "problem.type"),
    (("problem", "degree"), 4, "problem.degree"),  # Lagrange degree 1 to 3
    (("mesh", "size"), -0.1, "mesh.size"),
    (("optimiser",), {}, "optimiser"),
]


@pytest.mark.parametrize(("path", "value", "key"), BAD_CONFIGS, ids=[b[2] for b in BAD_CONFIGS])
def test_invalid_config_one_line_exit_2(tmp_path, capsys, path, value, key):
    import tomli_w

    doc = copy.deepcopy(small_lshape())
    table = doc
    for p in path[:-1]:
        table = table.setdefault(p, {})
    table[path[-1]] = value
    cfg = tmp_path / "bad.toml"
    cfg.write_text(tomli_w.dumps(doc))
    code = main(["train", str(cfg), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("neurofem: error:") and key in err, err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_autograd_refuses_spiking_network(tmp_path, capsys):
    import tomli_w

    doc = example("sinsin-vsn-sp.toml")
    doc["residual"] = {"kind": "autograd"}
    doc["boundary"] = {"mode": "soft"}
    (tmp_path / "c.toml").write_text(tomli_w.dumps(doc))
    assert main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "residual.kind" in err and "spikes" in err


def _train(doc: dict, run_dir: Path, comm=MPI.COMM_SELF) -> Trainer:
    tr = Trainer(parse_run_config(doc), run_dir, comm)
    tr.setup()
    tr.train()
    return tr


def test_lshape_vsn_galerkin_reaches_two_percent(tmp_path):
    """examples/lshape-vsn-galerkin.toml: < 2% relative L2 vs FEM, mean activity < 60%."""
    torch.set_num_threads(1)
    doc = example("lshape-vsn-galerkin.toml")
    doc["training"]["progress"] = False
    tr = _train(doc, tmp_path / "run")
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    print(f"lshape VSN+galerkin: rel_l2={last['rel_l2']:.4f} activity={last['activity']}")
    assert last["step"] == doc["training"]["steps"] == tr.step
    assert {"step", "loss", "rel_l2", "activity", "wall_s"} <= set(last)
    assert set(last["activity"]) == {"mean", "layers"} and len(last["activity"]["layers"]) == 3
    assert last["rel_l2"] < 0.02
    assert last["activity"]["mean"] < 0.60


def test_sinsin_vsn_sp_reaches_five_percent(tmp_path):
    """examples/sinsin-vsn-sp.toml (NeuroPINNs): < 5% relative L2 vs FEM."""
    torch.set_num_threads(1)
    doc = example("sinsin-vsn-sp.toml")
    doc["training"]["progress"] = False
    _train(doc, tmp_path / "run")
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    print(f"sinsin VSN+sp: rel_l2={last['rel_l2']:.4f} activity={last['activity']['mean']:.3f}")
    assert last["rel_l2"] < 0.05


def test_sinsin_ann_autograd_reaches_one_percent(tmp_path):
    """The vanilla PINN (ANN + autograd residual, soft boundary) on the same problem: < 1%."""
    torch.set_num_threads(1)
    doc = example("sinsin-ann-autograd.toml")
    doc["training"]["progress"] = False
    _train(doc, tmp_path / "run")
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    print(f"sinsin ANN+autograd: rel_l2={last['rel_l2']:.4f}")
    assert last["rel_l2"] < 0.01
    assert "activity" not in last  # an ANN has no spiking layers


def test_space_time_residual_vanishes_on_the_exact_heat_solution():
    """SP u_t − u_xx − f on the (x, t) grid: tiny for the exact solution, large for u = 0."""
    from coupling.residuals.spacetime import discretise_space_time
    from fem.reference import reference

    cfg = parse_run_config(example("heat1d-vsn-sp.toml"))
    dmesh = cfg.mesh.build(MPI.COMM_SELF)
    disc = discretise_space_time(cfg.problem, cfg.residual, cfg.boundary.weight, dmesh,
                                 reference(dmesh, cfg.problem), torch.float64, MPI.COMM_SELF)

    class Exact(torch.nn.Module):
        def forward(self, x):
            return (100 / np.pi**2 * (1 - torch.exp(-np.pi**2 * x[:, 1]))
                    * torch.sin(np.pi * x[:, 0]))

    class Zero(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), dtype=x.dtype)

    exact, _ = disc.residual.loss(Exact())
    zero, _ = disc.residual.loss(Zero())
    assert exact.item() < 1e-3 * zero.item()
    # and the reference sampled on the grid is the analytic solution (FEM, P2, Crank–Nicolson)
    err = (Exact()(disc.x_eval.to(torch.float64)) - disc.target).abs().max()
    assert err < 1e-3 * disc.target.abs().max()


def test_heat1d_vsn_sp_learns_in_space_time(tmp_path):
    """A VSN network on (x, t) with SP derivatives learns the 1D heat problem (< 5% at 1200
    steps; the full example reaches ~1% at 2000)."""
    torch.set_num_threads(1)
    doc = example("heat1d-vsn-sp.toml")
    doc["training"].update(steps=1200, progress=False)
    _train(doc, tmp_path / "run")
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    print(f"heat1d VSN+sp: rel_l2={last['rel_l2']:.4f} activity={last['activity']['mean']:.3f}")
    assert last["rel_l2"] < 0.05 and last["activity"]["mean"] < 0.6


def _params(run_dir: Path) -> list[np.ndarray]:
    from coupling.training.checkpoint import read_checkpoint

    name = (run_dir / "latest").read_text().strip()
    state = read_checkpoint(run_dir / name)["model"]
    return [v.numpy() for k, v in sorted(state.items())]


def test_sigterm_then_resume_equals_uninterrupted(tmp_path):
    """SIGTERM checkpoints and stops; `neurofem resume` then ends where a clean run ends."""
    import tomli_w

    doc = small_lshape(steps=400, checkpoint_every=1000, log_every=50)
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(doc))
    exe = [sys.executable, "-m", "coupling.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run([*exe, "train", str(cfg), "--out", str(tmp_path / "full")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr
    proc = subprocess.Popen([*exe, "train", str(cfg), "--out", str(tmp_path / "cut")], env=env,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err  # 143: stopped by SIGTERM (documented)
    assert "stopped by signal" in err
    stopped_at = int((tmp_path / "cut" / "latest").read_text().split("-")[1].split(".")[0])
    assert 0 < stopped_at < 400
    res = subprocess.run([*exe, "resume", str(tmp_path / "cut")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for a, b in zip(_params(tmp_path / "full"), _params(tmp_path / "cut"), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    steps = [json.loads(ln)["step"] for ln in metrics.read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 400


def test_resume_refuses_another_config(tmp_path, capsys):
    import tomli_w

    doc = small_lshape(steps=10)
    cfg = tmp_path / "run.toml"
    cfg.write_text(tomli_w.dumps(doc))
    assert main(["train", str(cfg), "--out", str(tmp_path / "r")]) == 0
    stored = tomllib.loads((tmp_path / "r" / "config.toml").read_text())
    stored["training"]["lr"] = 0.5  # not a resume key: a different run
    (tmp_path / "r" / "config.toml").write_text(tomli_w.dumps(stored))
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "r"), "--steps", "20"]) == 2
    err = capsys.readouterr().err
    assert "different config" in err and len(err.strip().splitlines()) == 1


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path):
    """A loss that turns NaN stops the run with a message; the last checkpoint stays good."""
    from coupling.training.errors import TrainingError
    from coupling.training.state import Callback

    class Poison(Callback):  # the data go bad right after the checkpoint of step 10
        def on_checkpoint(self, state, stopped):
            if state.step == 10:
                self.params = [v.clone() for _, v in sorted(state.net.state_dict().items())]
                self.steps_seen = state
                tr.disc.residual.b[0] = float("nan")

    doc = small_lshape(steps=30)
    doc["training"]["checkpoint_every"] = 10
    tr = Trainer(parse_run_config(doc), tmp_path / "r", MPI.COMM_SELF)
    tr.setup()
    poison = Poison()
    with pytest.raises(TrainingError, match="not finite at step 11.*step 10"):
        tr.train(callbacks=[poison])
    assert poison.steps_seen.step == 10  # the NaN step was not taken
    after = _params(tmp_path / "r")  # the checkpoint on disk is the last good state
    for a, b in zip(poison.params, after, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)


def test_nan_source_gives_one_line_exit_2(tmp_path, capsys):
    import tomli_w

    doc = small_lshape(steps=10)
    doc["problem"]["source"] = "log(x - 10)"  # NaN everywhere: the load vector is not finite
    (tmp_path / "c.toml").write_text(tomli_w.dumps(doc))
    assert main(["train", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not finite" in err, err


INJECT = """
import sys, time
from pathlib import Path
from coupling.cli import main
from coupling.training.loop import _Loop
from meshes.fenics import MPI

step = _Loop.step

def failing_step(self, stop):  # rank 1 fails mid-run; rank 0 is then in the gradient Allreduce
    if MPI.COMM_WORLD.rank == 1 and self.s.step == 5:
        Path(sys.argv[3]).write_text(repr(time.time()))
        raise RuntimeError("injected failure on rank 1")
    return step(self, stop)

_Loop.step = failing_step
sys.exit(main(["train", sys.argv[1], "--out", sys.argv[2]]))
"""


def test_exception_on_rank_1_ends_the_training_run(tmp_path):
    """2 ranks: an exception on rank 1 ends `neurofem train` within 10 s, with its message."""
    import tomli_w

    (tmp_path / "run.toml").write_text(tomli_w.dumps(small_lshape(steps=200)))
    (tmp_path / "inject.py").write_text(INJECT)
    mpiexec = Path(sys.executable).parent / "mpiexec"
    proc = subprocess.run([str(mpiexec), "-n", "2", sys.executable, str(tmp_path / "inject.py"),
                           str(tmp_path / "run.toml"), str(tmp_path / "r"), str(tmp_path / "t")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    ended = time.time()
    assert proc.returncode != 0
    assert "[rank 1]" in proc.stderr and "injected failure on rank 1" in proc.stderr
    assert ended - float((tmp_path / "t").read_text()) < 10


@pytest.mark.mpi
def test_two_ranks_train_like_one(tmp_path_factory):
    """20 float64 steps on 2 ranks give the parameters of 20 steps on 1 rank (to 1e-8)."""
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path_factory.mktemp("mpi")) if comm.rank == 0 else None))
    doc = small_lshape(steps=20)
    par = _train(doc, base / "par", comm)
    ser = _train(doc, base / f"ser{comm.rank}", MPI.COMM_SELF)
    for (n, a), (_, b) in zip(par.net.state_dict().items(), ser.net.state_dict().items(),
                              strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-8, err_msg=n)


def test_interface_distance_feature():
    """|distance to the nearest sphere surface|, with periodic images for cut inclusions."""
    from coupling.geometry import interface_distance

    c, r = np.array([[0.5, 0.5, 0.5], [0.05, 0.5, 0.5]]), np.array([0.2, 0.1])
    x = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.8], [0.97, 0.5, 0.5]])
    np.testing.assert_allclose(interface_distance(x, c, r, periodic=False), [0.2, 0.1, 0.27])
    # the image of the second sphere at x = 1.05 is 0.08 away from x = 0.97, minus r = 0.1
    np.testing.assert_allclose(interface_distance(x, c, r, periodic=True), [0.2, 0.1, 0.02])
