"""Parametric surrogates: the expected energy, training, held-out error, the CLI."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import meshes
import spiking
from coupling.cli import main
from coupling.residuals.parametric import discretise_parametric, reference_targets
from coupling.training.loop import fit
from fem.config import parse_problem
from fem.operators import assemble_operators
from fem.parameters import parse_parameters
from fem.problems.parametric import ParametricProblem
from meshes.fenics import MPI

ROOT = Path(__file__).resolve().parents[2]
POISSON = {"type": "poisson", "coefficients": 1.0, "source": "1 + x*y",
           "bcs": [{"boundary": "x0", "type": "dirichlet", "value": 0.0},
                   {"boundary": "x1", "type": "dirichlet", "value": "y"},
                   {"boundary": "y0", "type": "neumann", "value": 0.5}]}
RANGES = {"k": {"low": 0.5, "high": 5.0, "scale": "log"}, "source": [0.0, 2.0],
          "value.x0": [-1.0, 1.0]}


def _disc(size=0.1, comm=MPI.COMM_WORLD, **params):
    dm = meshes.build("rectangle", size, comm=comm)
    box = parse_parameters({"ranges": RANGES, **params})
    return discretise_parametric(ParametricProblem(dm, parse_problem(POISSON), box),
                                 dtype=torch.float64)


def _net(disc, seed=0):
    return spiking.MLP(disc.in_dim, [32, 32], out_dim=disc.out_dim, seed=seed,
                       dtype=torch.float64, bounds=disc.bounds)


@pytest.fixture(scope="module")
def disc():
    return _disc()


def test_single_point_box_is_todays_energy():
    """With a one-point box the loss is s⁻¹ times the Galerkin energy of today's training
    (K, b, Dirichlet data assembled directly at that point): the same minimiser."""
    mu = {"k": 2.0, "source": 1.5, "value.x0": 0.25}
    d = _disc(0.2, ranges={k: [v, v] for k, v in mu.items()})
    net = _net(d, seed=3)
    point = np.array([[2.0, 1.5, 0.25]])
    loss, _ = d.loss(net, torch.as_tensor(point))
    ops = assemble_operators(d.problem.problem_at(point[0]))
    u = d.fields(net, point)[0].detach().numpy()
    assert np.allclose(u[ops.dirichlet_dofs], ops.dirichlet_values, atol=1e-14)
    n = ops.layout.n_owned
    energy = 0.5 * u[:n] @ (ops.K_scipy @ u) - ops.b.numpy() @ u[:n]
    assert float(loss.detach()) * d.scale(point)[0] == pytest.approx(energy, rel=1e-10)


def test_expected_energy_over_loads_is_exact(disc):
    """The exact expectation over the load parameters equals the Monte-Carlo mean of the
    energy at sampled loads (unbiased; 4000 draws, within 4 standard errors)."""
    net = _net(disc)
    mu = disc.sample(0).numpy()[:1]
    exact = float(disc.loss(net, torch.as_tensor(mu))[0].detach()) * disc.scale(mu)[0]
    rng = np.random.default_rng(0)
    mus = np.repeat(mu, 4000, 0)
    mus[:, 1], mus[:, 2] = rng.uniform(0, 2, 4000), rng.uniform(-1, 1, 4000)
    ops = disc.problem.operators()
    K = ops.K(disc.problem.theta(mu[0]))
    with torch.no_grad():
        U = disc.fields(net, mus).numpy()
    n = disc.n_owned
    E = np.array([0.5 * u[:n] @ (K @ u) - ops.load(c) @ u[:n]
                  for u, c in zip(U, disc.problem.load_coefficients(mus), strict=True)])
    assert abs(E.mean() - exact) < 4 * E.std() / np.sqrt(len(E))


def test_trains_to_a_held_out_error(disc):
    """1500 Adam steps: held-out median ≤ 3%, worst ≤ 12% (measured 1.5% / 5.4%), far
    below the lift alone."""
    net = _net(disc)
    fit(net, disc, steps=1500, lr=5e-3, schedule="cosine", log_every=500)
    pts = disc.box.held_out_points()[:8]
    targets = reference_targets(disc.problem, pts, None, disc.n_owned)
    errs = disc.errors(net, pts, targets)
    lift = disc.errors(None, pts, targets)
    assert np.median(errs) <= 0.03 and max(errs) <= 0.12, errs
    assert np.median(lift) > 5 * np.median(errs)


@pytest.mark.mpi
def test_two_ranks_equal_serial_for_shared_draws():
    """draws = "shared": 2 ranks (mesh partitions) give the serial loss and training."""
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("needs 2 ranks")
    results = []
    for c in (comm, MPI.COMM_SELF):
        d = _disc(0.2, comm=c, draws="shared")
        net = _net(d)
        r = fit(net, d, steps=30, lr=5e-3, log_every=30, comm=c)
        results.append((r.loss, r.measures["rel_l2"]))
    assert results[0] == pytest.approx(results[1], rel=1e-9)


@pytest.mark.mpi
def test_each_rank_draws_its_own_parameters():
    """draws = "per_rank" (default): the ranks' μ batches differ at every step, both ranks
    continue one global stream (together the serial draws of twice the batch)."""
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        pytest.skip("needs 2 ranks")
    d = _disc(0.2, comm=comm, batch=2)
    serial = _disc(0.2, comm=MPI.COMM_SELF, batch=4, draws="shared")
    for step in (0, 7):
        mine = d.sample(step).numpy()
        both = np.vstack(comm.allgather(mine))
        assert not np.allclose(both[:2], both[2:])
        assert np.allclose(both, serial.sample(step).numpy())
    r = fit(_net(d), d, steps=20, lr=5e-3, log_every=20)
    assert np.isfinite(r.loss) and r.measures["rel_l2"] < 1


def _small_config(tmp_path: Path, steps: int = 40) -> Path:
    doc = (ROOT / "examples" / "poisson-parametric.toml").read_text()
    doc = doc.replace("size = 0.05", "size = 0.2").replace("hidden = [64, 64, 64]",
                                                           "hidden = [16, 16]")
    doc = doc.replace("steps = 3000", f"steps = {steps}\nprogress = false")
    doc = doc.replace("batch = 4", "batch = 2\nheld_out = 4\nvalidation = 2")
    doc = doc.replace('schedule = "cosine"', 'schedule = "none"')  # --steps would change it
    doc = doc.replace("log_every = 100", "log_every = 10").replace(
        "checkpoint_every = 1000", "checkpoint_every = 20")
    cfg = tmp_path / "param.toml"
    cfg.write_text(doc)
    tomllib.loads(doc)
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("param")
    run = tmp / "run"
    assert main(["train", str(_small_config(tmp)), "--out", str(run)]) == 0
    return run


def test_metrics_report_and_query(run, tmp_path, capsys):
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(recs[-1]["rel_l2_points"]) == 2 and recs[-1]["step"] == 40
    assert main(["report", str(run)]) == 0
    s = json.loads((run / "summary.json").read_text())
    assert s["errors"]["n"] == 4 and len(s["point_errors"]) == 4
    assert s["query"]["speedup"] > 0 and (run / "parametric_errors.png").stat().st_size > 0
    out = tmp_path / "q"
    assert main(["query", str(run), "--param", "k=1.5", "--param", "source=1",
                 "--param", "value.holes=0.2", "--out", str(out)]) == 0
    q = json.loads((out / "query.json").read_text())
    assert q["parameters"] == {"k": 1.5, "source": 1.0, "value.holes": 0.2}
    assert (out / "field.xdmf").exists() and 0 <= q["rel_l2"] < 1


@pytest.mark.parametrize("params, words", [
    (["k=9", "source=1", "value.holes=0"], "--param k: 9.0 is outside the trained box"),
    (["k=1", "source=1"], "missing parameter 'value.holes'"),
    (["k=1", "source=1", "value.holes=0", "f=2"], "unknown parameter 'f'"),
    (["k=1", "source"], "expected NAME=VALUE"),
])
def test_bad_query_is_one_line(run, params, words, capsys):
    argv = ["query", str(run)] + [a for p in params for a in ("--param", p)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err, err


def test_query_on_a_plain_run_is_refused(tmp_path, capsys):
    (tmp_path / "config.toml").write_text('[mesh]\nkind = "rectangle"\n')
    assert main(["query", str(tmp_path), "--param", "k=1"]) == 2
    assert "not a parametric run" in capsys.readouterr().err


def test_resume_equals_uninterrupted(run, tmp_path):
    """20 steps, then resume to 40 == 40 steps at once (μ draws depend on the step)."""
    cfg = _small_config(tmp_path)
    cut = tmp_path / "cut"
    assert main(["train", str(cfg), "--out", str(cut), "--steps", "20"]) == 0
    assert main(["resume", str(cut), "--steps", "40"]) == 0
    last = [json.loads(line) for line in (cut / "metrics.jsonl").read_text().splitlines()][-1]
    ref = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["step"] == ref["step"] == 40
    assert last["loss"] == pytest.approx(ref["loss"], rel=1e-6)
    assert last["rel_l2"] == pytest.approx(ref["rel_l2"], rel=1e-6)
