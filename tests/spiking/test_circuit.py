"""The spiking circuit on small SPD systems: convergence within the stated bound, the bound
shrinking with neurons per dof, fixed point vs float, warm start, hand-counted energy,
one-line errors for bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from spiking.circuit import Circuit, CircuitError, CircuitParams
from spiking.circuit_energy import circuit_ops, neuromorphic_pj, price
from spiking.circuit_tuning import (
    auto_gains,
    auto_gamma,
    check_stable,
    gershgorin,
    lanczos_min,
    precision_bound,
    stable_dt,
)
from spiking.energy import EnergyTable

DT = 2.0**-4


def laplacian_1d(n: int = 30) -> tuple[sp.csr_matrix, np.ndarray]:
    K = sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]) * (n + 1)
    return sp.csr_matrix(K), np.ones(n) / (n + 1)


def random_spd(n: int = 24, seed: int = 1) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = sp.random(n, n, density=0.15, random_state=seed) - 0.5 * sp.random(
        n, n, density=0.15, random_state=seed + 1)
    A = A + A.T
    K = A + sp.diags(abs(A).sum(axis=1).A1 + rng.uniform(0.5, 2.0, n))  # diagonally dominant
    return sp.csr_matrix(K), rng.uniform(-1, 1, n)


def tuned(K, b, neurons: int, **kw) -> tuple[CircuitParams, float, float, float]:
    """Auto-tuned parameters, exact smallest eigenvalue, Gershgorin bound, Σ D_ii."""
    d = K.diagonal()
    L = gershgorin(sp.diags(1 / d) @ K)
    S = sp.diags(d**-0.5) @ K @ sp.diags(d**-0.5)
    mu = float(np.linalg.eigvalsh(S.toarray())[0])
    x = np.linalg.solve(K.toarray(), b)
    p = CircuitParams(neurons=neurons, dt=DT, gamma=auto_gamma(abs(x).max(), neurons, DT, 0, 64),
                      **{**auto_gains(L, mu, DT), **kw})
    return p, mu, L, float(d.sum())


def d_error(c: Circuit, x: np.ndarray) -> float:
    return float(np.sqrt(c.diag @ (c.readout - x) ** 2))


def late_errors(c: Circuit, x: np.ndarray, steps: int, tail: int) -> list[float]:
    errs = []
    for k in range(steps):
        c.step()
        if k >= steps - tail:
            errs.append(d_error(c, x))
    return errs


@pytest.mark.parametrize("system", [laplacian_1d, random_spd])
def test_float_readout_converges_within_the_bound_which_shrinks_with_neurons(system):
    K, b = system()
    x = np.linalg.solve(K.toarray(), b)
    bounds = {}
    for N in (4, 16):
        p, mu, L, dsum = tuned(K, b, N)
        bound = precision_bound(p, L, mu, dsum)
        errs = late_errors(Circuit(K, b, p), x, 1500, 300)
        assert max(errs) <= bound, (N, max(errs), bound)
        bounds[N] = (bound, p.gamma)
    # γ ∝ 1/N (auto_gamma) and the bound ∝ γ: four times the neurons, a quarter the bound
    assert bounds[16][1] == bounds[4][1] / 4
    assert bounds[16][0] == pytest.approx(bounds[4][0] / 4, rel=1e-9)


def test_lanczos_bounds_the_smallest_eigenvalue_from_above():
    K, _ = laplacian_1d(40)
    d = K.diagonal()
    S = (sp.diags(d**-0.5) @ K @ sp.diags(d**-0.5)).toarray()
    exact = np.linalg.eigvalsh(S)[0]
    est = lanczos_min(K, d, steps=40)
    assert exact * (1 - 1e-9) <= est <= 1.05 * exact


def test_fixed_point_agrees_with_float_within_the_quantisation_bound():
    K, b = laplacian_1d()
    x = np.linalg.solve(K.toarray(), b)
    p, mu, L, dsum = tuned(K, b, 8)
    flo = Circuit(K, b, p)
    fix = Circuit(K, b, CircuitParams(**{**p.as_dict(), "mode": "fixed"}))
    Kq, bq = fix.quantised_system()
    xq = np.linalg.solve(Kq.toarray(), bq)  # what the chip's weights and bias solve
    sys_err = float(np.sqrt(fix.diag @ (xq - x) ** 2))
    bound = (precision_bound(p, L, mu, dsum) + precision_bound(fix.p, L, mu, dsum) + sys_err)
    for _ in range(1500):
        flo.step()
        fix.step()
    assert float(np.sqrt(flo.diag @ (fix.readout - flo.readout) ** 2)) <= bound
    assert d_error(fix, x) <= precision_bound(fix.p, L, mu, dsum) + sys_err


def test_fixed_point_is_integer_and_deterministic_with_noise():
    K, b = random_spd()
    p, *_ = tuned(K, b, 8, noise=0.2)
    runs = []
    for _ in range(2):
        c = Circuit(K, b, CircuitParams(**{**p.as_dict(), "mode": "fixed"}))
        for _ in range(200):
            c.step()
        assert c.V.dtype == np.int64 and c.R.dtype == np.int64
        runs.append((c.V.copy(), c.R.copy(), dict(c.counts)))
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][2] == runs[1][2]


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_warm_start_at_the_solution_stays_within_the_bound_from_step_0(mode):
    K, b = laplacian_1d()
    x = np.linalg.solve(K.toarray(), b)
    p, mu, L, dsum = tuned(K, b, 8, mode=mode)
    c = Circuit(K, b, p)
    c.reset(x)
    bound = precision_bound(c.p, L, mu, dsum)
    errs = [d_error(c, x)] + late_errors(c, x, 400, 400)
    assert max(errs) <= bound
    # a cold start is far outside it at first: the warm start saves the build-up
    cold = Circuit(K, b, p)
    assert d_error(cold, x) > 10 * bound


def test_energy_counts_of_a_tiny_circuit_equal_hand_counts():
    # 1 dof, K = 1, b = 2.2γ, N = 4 (thresholds ½, 3⁄2 per sign), h k_p = 1, k_i = 0:
    # step 1: V = 2.2 → the two + neurons fire; step 2: V = 2.2 − 2 + 0.2 = 0.4, none;
    # step 3: V = 0.6 → one fires. 3 spikes, each reaching N·(nnz 1) slow + N fast synapses.
    g = 2.0**-4
    p = CircuitParams(neurons=4, dt=DT, k_p=16.0, k_i=0.0, gamma=g)
    c = Circuit(sp.csr_matrix([[1.0]]), np.array([2.2 * g]), p)
    fired = []
    for _ in range(3):
        c.step()
        fired.append(int(c.spiked[0]))
    assert fired == [2, 0, 1]
    assert c.counts == {"steps": 3, "spikes": 3, "syn_slow": 12, "syn_fast": 12}
    ops = circuit_ops(p, dofs=1, steps=3, spikes=3, synaptic=24)
    # neurons: 12 neuron-steps × (3 MAC: h·e, k_p·e, h·drive; 2 ACC; 5 reads; 3 writes)
    assert ops["neurons"].mac == 36 and ops["neurons"].acc == 24
    assert (ops["neurons"].reads, ops["neurons"].writes) == (60, 36)
    assert (ops["synapses"].acc, ops["synapses"].reads, ops["synapses"].writes) == (24, 27, 3)
    assert (ops["readout"].acc, ops["readout"].reads, ops["readout"].writes) == (3, 3, 3)
    t = ops["total"]
    assert (t.mac, t.acc, t.reads, t.writes) == (36, 51, 90, 42)
    priced = price(ops, EnergyTable())
    assert priced["total"]["pj"] == pytest.approx(36 * 4.6 + 51 * 0.9 + 90 * 5 + 42 * 5)
    assert priced["total"]["compute_pj"] == pytest.approx(36 * 4.6 + 51 * 0.9)
    # Loihi 2018: 24 synaptic ops, 12 neuron updates, 3 spikes; the readout on the host
    loihi = neuromorphic_pj(p, dofs=1, steps=3, spikes=3, synaptic=24)
    assert loihi == pytest.approx(24 * 23.6 + 12 * 81.0 + 3 * 1.7 + 3 * 0.9 + 6 * 5.0)


def test_non_symmetric_operator_is_refused_naming_the_key():
    K = sp.csr_matrix(np.array([[2.0, -1.0], [-0.5, 2.0]]))
    with pytest.raises(CircuitError, match=r"^config circuit\.operator: not symmetric") as err:
        Circuit(K, np.ones(2), CircuitParams())
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("neurons", [0, -4, 3, 2.0])
def test_bad_neurons_per_dof_are_refused_naming_the_key(neurons):
    with pytest.raises(CircuitError, match=r"^config circuit\.neurons: ") as err:
        CircuitParams(neurons=neurons)
    assert "\n" not in str(err.value)


def test_time_step_above_the_stability_bound_is_refused_naming_the_key():
    K, b = laplacian_1d()
    p, _, L, _ = tuned(K, b, 8)
    check_stable(p, L)
    limit = stable_dt(p, L)
    bad = CircuitParams(**{**p.as_dict(), "dt": 1.05 * limit})
    with pytest.raises(CircuitError,
                       match=r"^config circuit\.dt: .* above the stability bound") as e:
        check_stable(bad, L)
    assert "\n" not in str(e.value)
    with pytest.raises(CircuitError, match=r"^config circuit\.dt: "):
        CircuitParams(dt=0.1, mode="fixed")  # fixed point needs a power of two
