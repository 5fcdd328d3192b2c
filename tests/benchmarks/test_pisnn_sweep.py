"""`python -m benchmarks.pisnn_sweep heat1d --quick`: the PISNN energy sweep runs end to end
and writes its JSON, Markdown and PNG; the event-driven C-LIF rollout it measures equals the
dense one, keeps the budget exact, and its energy counts match hand-computed ones."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fem.fv_geometry import grid_geometry, stable_dt
from spiking import CLIFSolver, FluxNet
from spiking.cfq import FIXED_VALUE
from spiking.energy import EnergyTable

ROOT = Path(__file__).resolve().parents[2]


def test_quick_sweep_writes_json_markdown_and_png(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.pisnn_sweep", "heat1d", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "pisnn-sweep-heat1d-quick.json").read_text())
    png = (tmp_path / "pisnn-sweep-heat1d-quick.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    md = (tmp_path / "pisnn-sweep-heat1d-quick.md").read_text()
    assert "load average" in doc["uptime"] and len(doc["records"]) == 2
    dense, sparse = doc["records"]
    assert dense["broadcast"] == 0.0 and sparse["broadcast"] == 0.005
    for r in doc["records"]:
        assert r["mass_drift"] == 0 and r["mass_drift_max"] == 0
        assert 0 < r["ratio_compute"] < r["ratio"] < 1
        assert f"{r['ratio']:.3f}" in md and f"{r['ratio_compute']:.3f}" in md
        assert r["per_time_ratio"] == pytest.approx(r["ratio"], rel=1e-12)  # CFL 0.9 both
    # the same trained flux: send-on-delta evaluates F far less often per step
    assert sparse["evaluations"] < 0.5 * dense["evaluations"] <= 0.5 * dense["evaluations_dense"]
    assert sparse["ratio"] < 0.5 * dense["ratio"]


def test_unknown_problem_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.pisnn_sweep", "nope", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pisnn_sweep 'nope'" in proc.stderr


def _diffusion_flux() -> FluxNet:
    """A FluxNet([8]) fitted to linear diffusion F(a, b) = w·(a − b) (k = 1) on [0, 1]²."""
    net = FluxNet([8], seed=3)
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    gen = torch.Generator().manual_seed(0)
    ab = torch.rand(2, 512, generator=gen, dtype=torch.float64)
    w = torch.ones(512, dtype=torch.float64)
    for _ in range(300):
        opt.zero_grad()
        loss = ((net(ab[0], ab[1], w) - (ab[0] - ab[1])) ** 2).mean()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3
    return net


FLUX = _diffusion_flux()


def _solver(broadcast: float = 0.0, n: int = 24, q: float = 1e-4
            ) -> tuple[CLIFSolver, torch.Tensor]:
    geo = grid_geometry([n])
    kind = np.full(len(geo.boundary_cells), FIXED_VALUE)
    zero = torch.zeros(len(kind), dtype=torch.float64)
    sol = CLIFSolver(geo, FLUX, q, stable_dt(geo, 1.0, 0.9), bc_kind=kind,
                     bc_data=lambda t: zero, bc_static=True, broadcast=broadcast)
    u0 = torch.as_tensor(np.sin(np.pi * geo.centroids[:, 0]))
    return sol, u0


def test_event_driven_rollout_equals_dense_and_broadcast_keeps_budget_exact():
    sol, u0 = _solver(q=1e-2)  # ~0.2 quanta per facet and step: most cells rest
    lazy, dense = sol.init_state(u0), sol.init_state(u0)
    evals_lazy = evals_dense = 0
    for _ in range(400):
        evals_lazy += sol.step(lazy).evaluated
        dense.sent = None  # forget every broadcast: F evaluated at every facet, every step
        evals_dense += sol.step(dense).evaluated
    # The lazy path reuses increments computed in smaller batches than the dense one: the
    # integer quanta agree exactly, the float membranes to round-off (BLAS blocks batches
    # of different sizes differently, per CPU and thread count).
    assert torch.equal(lazy.quanta, dense.quanta)
    torch.testing.assert_close(lazy.v, dense.v, rtol=0, atol=1e-12)
    assert evals_dense == 400 * (len(sol.i) + len(sol.b_val))
    assert evals_lazy < evals_dense  # facets between two resting cells reuse their increment
    fine, _ = _solver()  # q = 1e-4: every cell changes every step
    coarse, _ = _solver(broadcast=0.01)
    evals = []
    for s in (fine, coarse):
        state = s.init_state(u0)
        evals.append(sum(s.step(state).evaluated for _ in range(400)))
        assert state.drift() == 0
    assert evals[1] < 0.5 * evals[0]
    assert coarse.theta.min().item() == round(0.01 / 24 / 1e-4)  # θ = broadcast·V/q quanta


def test_energy_per_step_matches_hand_counts():
    sol, _ = _solver(n=4)  # 3 interior + 2 value facets, no source: 5 neurons
    # FluxNet([8]): two passes of Linear(2, 8) + Linear(8, 1), then one MAC and one ACC
    mac = 2 * (2 * 8 + 8 * 1) + 1
    acc = 2 * (8 + 1) + 1
    mem = 2 * ((16 + 8 + 2) + (8 + 1 + 8)) + 2 * (8 + 1)  # reads + writes of both passes
    e_net, c_net = 4.6 * mac + 0.9 * acc + 5.0 * mem, 4.6 * mac + 0.9 * acc
    en = sol.energy_per_step(7.0, 2.0, evaluated=3.0, broadcasts=1.0, notices=2.0)
    # float FV: 5 evaluations; per neuron 1 MAC, 2 ACC, 3 reads, 2 writes
    assert en["float_fv_pj"] == pytest.approx(5 * e_net + 5 * (4.6 + 1.8 + 25.0))
    assert en["float_fv_compute_pj"] == pytest.approx(5 * c_net + 5 * (4.6 + 1.8))
    # spiking: 3 evaluations; 2 ACC, 2 reads, 1 write per neuron; per firing 5 ACC, 6 reads,
    # 2 writes; per broadcast 1 MAC, 1 read, 2 writes; per notice 1 read, 1 write; per
    # evaluation 1 read (notice) and 1 write (cached increment)
    reads, writes = 2 * 5 + 6 * 2 + 1 + 2 + 3, 5 + 2 * 2 + 2 * 1 + 2 + 3
    spiking = 3 * e_net + 4.6 * 1 + 0.9 * (2 * 5 + 5 * 2) + 5.0 * (reads + writes)
    assert en["spiking_pj"] == pytest.approx(spiking)
    assert en["spiking_compute_pj"] == pytest.approx(3 * c_net + 4.6 + 0.9 * 20)
    assert en["ratio"] == pytest.approx(en["spiking_pj"] / en["float_fv_pj"])
    assert en["ratio_compute"] == pytest.approx(en["spiking_compute_pj"]
                                                / en["float_fv_compute_pj"])
    assert EnergyTable().name == en["table"]


@pytest.mark.parametrize("value", [-0.1, 1.0, "x"])
def test_bad_broadcast_names_the_key(value):
    from coupling.config import parse_clif_config
    from fem.config import load_toml
    from fem.errors import ConfigError

    doc = load_toml(ROOT / "examples" / "heat1d-clif.toml")
    doc["clif"]["broadcast"] = value
    with pytest.raises(ConfigError, match=r"clif\.broadcast"):
        parse_clif_config(doc)
