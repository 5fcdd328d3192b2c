"""Gains, stability and precision of a spiking circuit from the spectrum of its operator.

Per eigenmode κ of K̃ = D⁻¹K (real, in (0, L] with L the Gershgorin bound) the circuit's
target y and integral z follow a 2×2 linear map (docs/algorithms.md, "Spiking FEM
circuit"): stability is a spectral radius below 1 for every κ in (0, L]; the readout's
precision is the quantisation γ/2 amplified by the loop's ℓ1 impulse response.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from .circuit import CircuitError, CircuitParams, Serial, _splitmix

KAPPA_GRID = 400  # modes sampled on (0, L] (log-spaced) for the stability and gain checks


def gershgorin(Ks: sp.csr_matrix, comm=None) -> float:
    """Upper bound of K̃'s spectrum: max row sum of |K̃| over all ranks."""
    rows = np.asarray(abs(Ks).sum(axis=1)).ravel()
    return _digits((comm or Serial()).max(float(rows.max()) if len(rows) else 0.0))


def lanczos_min(K: sp.csr_matrix, diag: np.ndarray, comm=None, steps: int = 80,
                seed: int = 0, ids: np.ndarray | None = None) -> float:
    """Smallest Ritz value of D^-½ K D^-½ after `steps` Lanczos steps (an upper bound of
    K̃'s smallest eigenvalue; distributed: ghost exchange per product, global dots; the
    start vector is keyed by the global dof ids, so any rank count starts alike)."""
    comm = comm or Serial()
    n = len(diag)
    s = 1.0 / np.sqrt(diag)

    def matvec(v: np.ndarray) -> np.ndarray:
        w = s * v
        return s * (K @ np.concatenate([w, comm.exchange(w)]))

    def dot(a: np.ndarray, b: np.ndarray) -> float:
        return float(comm.sum(float(a @ b)))

    keys = np.arange(n) if ids is None else np.asarray(ids)
    q = (_splitmix(keys.astype(np.uint64) + np.uint64(seed)) >> np.uint64(11)) * 2.0**-53 - 0.5
    q /= math.sqrt(dot(q, q))
    q_prev, beta, alphas, betas = np.zeros(n), 0.0, [], []
    for _ in range(steps):
        w = matvec(q) - beta * q_prev
        alpha = dot(w, q)
        w -= alpha * q
        alphas.append(alpha)
        beta = math.sqrt(max(dot(w, w), 0.0))
        if beta < 1e-14:
            break
        betas.append(beta)
        q_prev, q = q, w / beta
    off = betas[: len(alphas) - 1]
    T = np.diag(alphas) + np.diag(off, 1) + np.diag(off, -1)
    return _digits(float(np.linalg.eigvalsh(T)[0]))


def _digits(v: float) -> float:
    """`v` to 6 significant digits: gains then agree on any rank count (sums round apart)."""
    return float(f"{v:.6g}")


def auto_gains(L: float, mu: float, dt: float) -> dict[str, float]:
    """k_i, leak, k_p: half the heavy-ball step of Polyak's optimum for spectrum [μ, L]
    (the momentum from the integral's leak) plus a small proportional damping of the
    stiffest modes (both halvings keep the quantisation chatter low)."""
    rl, rm = math.sqrt(L), math.sqrt(mu)
    beta = ((rl - rm) / (rl + rm)) ** 2
    alpha = 2.0 / (rl + rm) ** 2
    return {"k_i": alpha / dt**2, "leak": (1.0 - beta) / dt, "k_p": 0.25 / (dt * L)}


def auto_gamma(x_max: float, neurons: int, dt: float, lambda_d: float, slew_steps: int) -> float:
    """The power-of-two readout weight with which N/2 spikes per step hold x_max against the
    readout's leak and cross it in `slew_steps` steps: γ ≤ 2 x_max (1/S + hλ_d) / N."""
    if not (x_max > 0 and math.isfinite(x_max)):
        raise CircuitError("gamma", f"cannot size gamma from a solution scale {x_max!r}")
    return 2.0 ** math.floor(math.log2(2 * x_max * (1 / slew_steps + dt * lambda_d) / neurons))


def mode_map(kappa: float, p: CircuitParams) -> tuple[np.ndarray, np.ndarray]:
    """The per-mode map (ξ, ζ) → (ξ', ζ') of target error and integral, and the input
    vector of the readout's quantisation error q (x̂ = y + q)."""
    h = p.dt
    leak = 1.0 - h * p.leak
    A = np.array([[1 - h * p.k_p * kappa - h * h * p.k_i * kappa, h * p.k_i * leak],
                  [-h * kappa, leak]])
    u = np.array([-h * p.k_p * kappa - h * h * p.k_i * kappa + h * p.lambda_v, -h * kappa])
    return A, u


def _kappas(L: float, lo: float) -> np.ndarray:
    return np.geomspace(max(lo, L * 1e-9), L, KAPPA_GRID)


def spectral_radius(p: CircuitParams, L: float, lo: float = 1e-9) -> float:
    """Largest spectral radius of the per-mode maps over κ in [lo, L]."""
    return max(float(max(abs(np.linalg.eigvals(mode_map(k, p)[0])))) for k in _kappas(L, lo))


def stable_dt(p: CircuitParams, L: float) -> float:
    """The largest time step (other gains fixed) with every mode in (0, L] stable."""
    p = replace(p, mode="float")  # the map is the same; fixed point would insist on 2^-p
    lo, hi = 0.0, p.dt
    while spectral_radius(replace(p, dt=hi), L) < 1.0 and hi < 1e6:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spectral_radius(replace(p, dt=mid), L) < 1.0 else (lo, mid)
    return lo


def check_stable(p: CircuitParams, L: float) -> None:
    """Raise a one-line error naming circuit.dt when some mode of (0, L] would diverge."""
    if spectral_radius(p, L) >= 1.0:
        raise CircuitError("dt", f"{p.dt:.6g} is above the stability bound {stable_dt(p, L):.6g} "
                           f"for these gains (k_p={p.k_p:.4g}, k_i={p.k_i:.4g}, "
                           f"leak={p.leak:.4g}) and spectrum bound L={L:.4g}")


def loop_gain(p: CircuitParams, L: float, mu: float, tol: float = 1e-6,
              max_steps: int = 200_000) -> float:
    """G = Σ_n max_κ |h_κ(n)|: the ℓ1 response of the target error to a unit quantisation
    error, maximised over the modes κ in [μ, L] (bounds ||y − x*||_D by G·sup||q||_D)."""
    ks = _kappas(L, mu)
    maps = [mode_map(k, p) for k in ks]
    A = np.stack([m[0] for m in maps])
    state = np.stack([m[1] for m in maps])  # the response one step after a unit impulse
    total = 0.0
    for _ in range(max_steps):
        step = float(np.abs(state[:, 0]).max())
        total += step
        if step < tol * max(total, 1e-300):
            break
        state = np.einsum("kij,kj->ki", A, state)
    return total


def precision_bound(p: CircuitParams, L: float, mu: float, d_sum: float) -> float:
    """Bound of ||x̂ − x*||_D after the transient: (1 + G)·(γ/2)·(Σ_i D_ii)^½ (no
    saturation, no noise; D the Jacobi diagonal)."""
    return (1.0 + loop_gain(p, L, mu)) * 0.5 * p.gamma * math.sqrt(d_sum)
