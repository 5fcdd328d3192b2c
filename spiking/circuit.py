"""Spiking FEM circuit: spike-coding populations whose readout settles at K⁻¹b (training-free).

Each dof i of a sparse SPD system K x = b (Jacobi-scaled inside: K̃ = D⁻¹K, b̃ = D⁻¹b)
owns a population of N neurons, N/2 with readout weight +γ and N/2 with −γ; the readout
is x̂_i = γ R_i, R the (λ_d-leaky) count of the population's signed spikes. Voltages are
kept in units of γ² (so the fast weights ΓᵀΓ are ±1 and the thresholds (j + ½), j the
neuron's rank within its sign: the staggered thresholds let a population emit the
number of spikes its coding error needs within one step). Per neuron and step::

    s_slow ← (1 − hλ_d) s_slow − σ (K̃ c)_i          slow synapses ΓᵀK̃Γ (neighbours' spikes)
    s_fast ← (1 − hλ_d) s_fast + λ_d σ c_i           fast synapses ΓᵀΓ (own population)
    e      = s_slow + σ b̃_i / γ                      projected residual σ(b̃ − K̃x̂)_i / γ
    z      ← (1 − hρ) z + h e                         integral (ρ: its leak = momentum)
    V      ← V + h(−λ_v V + k_p e + k_i z + s_fast) − σ c_i + noise
    spike  = V ≥ θ_j                                 c_i = Σ_k σ_k spike_ik

with c the signed spike counts of the previous step (the ghost dofs' counts come from
their owning ranks through ``comm.exchange``). docs/algorithms.md ("Spiking FEM circuit")
derives why the readout converges to K⁻¹b and what bounds its precision.

Fixed-point mode models a chip: h = 2^-p, every state an int64 in units of 2^-F (γ²
units), slow weights K̃ as signed ``weight_bits`` integers with one power-of-two scale,
gains with ``gain_bits`` fractional bits, every product h·g·x an arithmetic right shift
with round-half-up; integer sums are exact, so a run is bit-identical on any rank count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np
import scipy.sparse as sp

from .errors import ConfigError

MODES = ("float", "fixed")


class CircuitError(ConfigError):
    """A bad circuit input: the one config error, its key under ``circuit.``
    (``config circuit.<key>: <message>``); the subclass only fixes that prefix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"circuit.{key}", message)


class Serial:
    """The one-rank collective: no ghost dofs; sums and maxima are the local values."""

    def exchange(self, owned: np.ndarray) -> np.ndarray:
        """Values of the ghost dofs (none on one rank)."""
        return owned[:0]

    def sum(self, value: float) -> float:
        """Global sum of a per-rank value."""
        return value

    def max(self, value: float) -> float:
        """Global maximum of a per-rank value."""
        return value


@dataclass(frozen=True)
class CircuitParams:
    """Gains and resolution of a circuit (time in units of the step h = dt)."""

    neurons: int = 8  # per dof, even: N/2 with +γ, N/2 with −γ
    dt: float = 2.0**-4
    k_p: float = 0.0
    k_i: float = 64.0
    leak: float = 0.0  # ρ, leak of the integral (0: pure PI)
    lambda_d: float = 0.0  # readout (synaptic) decay rate
    lambda_v: float = 0.0  # membrane leak
    gamma: float = 2.0**-10  # readout weight
    noise: float = 0.0  # uniform voltage noise amplitude per step (γ² units)
    mode: str = "float"
    frac_bits: int = 20  # F: state resolution 2^-F (fixed point)
    weight_bits: int = 16  # signed slow-weight width (fixed point)
    gain_bits: int = 8  # fractional bits of the gains (fixed point)
    seed: int = 0
    average: float = 0.0  # time constant (steps) of the averaged readout x̄; 0: none

    def __post_init__(self) -> None:
        n = self.neurons
        if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n % 2:
            raise CircuitError("neurons", f"{n!r}: expected an even integer >= 2 (neurons per "
                               "dof, half with +gamma, half with -gamma)")
        if self.mode not in MODES:
            raise CircuitError("mode", f"{self.mode!r}: choose from {', '.join(MODES)}")
        for f in ("dt", "gamma"):
            v = getattr(self, f)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise CircuitError(f, f"{v!r}: expected a finite number > 0")
        for f in ("k_p", "k_i", "leak", "lambda_d", "lambda_v", "noise", "average"):
            v = getattr(self, f)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise CircuitError(f, f"{v!r}: expected a finite number >= 0")
        if self.k_p == 0 and self.k_i == 0:
            raise CircuitError("k_i", "k_p and k_i are both 0: nothing drives the readout")
        if self.mode == "fixed":
            p = -math.log2(self.dt)
            if p != int(p) or p < 0:
                raise CircuitError("dt", f"{self.dt!r}: fixed point needs a power of two <= 1")
            for f, lo, hi in (("frac_bits", 8, 40), ("weight_bits", 4, 32), ("gain_bits", 0, 16)):
                v = getattr(self, f)
                if not (isinstance(v, int) and lo <= v <= hi):
                    raise CircuitError(f, f"{v!r}: expected an integer in [{lo}, {hi}]")

    @property
    def shift(self) -> int:
        """p with h = 2^-p (fixed point)."""
        return int(round(-math.log2(self.dt)))

    def quantised(self) -> CircuitParams:
        """The parameters a fixed-point chip runs: gains rounded to 2^-gain_bits."""
        if self.mode != "fixed":
            return self
        q = 2.0**self.gain_bits
        return replace(self, **{f: round(getattr(self, f) * q) / q for f in
                                ("k_p", "k_i", "leak", "lambda_d", "lambda_v")})

    def as_dict(self) -> dict:
        """JSON-ready parameters."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _rshift(x: np.ndarray, s: int) -> np.ndarray:
    """x · 2^-s rounded half up (arithmetic shift: the chip's fixed-point multiply)."""
    if s <= 0:
        return x << -s
    return (x + (np.int64(1) << (s - 1))) >> s


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 of uint64 keys (counter-based noise: the same on any rank count)."""
    with np.errstate(over="ignore"):  # the hash multiplies modulo 2^64 on purpose
        return _splitmix_raw(np.asarray(x, dtype=np.uint64))


def _splitmix_raw(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def check_operator(K: sp.csr_matrix, n_owned: int, tol: float = 1e-10) -> np.ndarray:
    """The diagonal of the owned block after checking symmetry and a positive diagonal."""
    A = sp.csr_matrix(K[:, :n_owned])
    diff = abs(A - A.T).max() if A.nnz else 0.0
    scale = abs(A).max() if A.nnz else 1.0
    if diff > tol * scale:
        raise CircuitError("operator", f"not symmetric (max |K - K^T| = {diff:.3g}, "
                           f"{diff / scale:.3g} of max |K|): the circuit needs an SPD matrix")
    diag = A.diagonal()
    if not (diag > 0).all():
        raise CircuitError("operator", f"diagonal entry {diag.min():.3g} <= 0: not positive "
                           "definite")
    return diag


def _round_keeping_row_sums(Ks: sp.csr_matrix, bits: int, n: int) -> sp.csr_matrix:
    """K̃ in integer units of 2^-bits: off-diagonals rounded, each diagonal set so that its
    row sums to the rounded row sum of K̃. A FEM operator's rows nearly cancel (K̃·1 ≈ 0
    inside the domain); rounding them independently would perturb that cancellation and
    with it every smooth mode (2% error on a 1e3-node disk at 16 bits, 1e-4 this way)."""
    A = sp.csr_matrix(Ks).tocoo()
    scale = 2.0**bits
    diag = A.row == A.col
    data = np.where(diag, 0, np.round(A.data * scale)).astype(np.int64)
    Q = sp.csr_matrix((data, (A.row, A.col)), shape=A.shape)
    sums = np.round(np.asarray(Ks.sum(axis=1)).ravel() * scale).astype(np.int64)
    d = sums - np.asarray(Q.sum(axis=1)).ravel().astype(np.int64)
    Q = sp.csr_matrix(Q + sp.csr_matrix((d, (np.arange(n), np.arange(n))), shape=A.shape))
    Q.eliminate_zeros()
    return Q


class Circuit:
    """The spiking circuit of one rank: its owned dofs' populations, state and counters.

    K: CSR (n_owned × n_owned + n_ghost), columns owned first then ghosts (as
    ``comm.exchange`` orders them); b: (n_owned,); ids: a global id per owned dof (keys
    the noise, so runs agree on any rank count)."""

    def __init__(self, K, b: np.ndarray, params: CircuitParams, *, ids: np.ndarray | None = None,
                 comm=None) -> None:
        self.comm = comm or Serial()
        self.n = n = len(b)
        K = sp.csr_matrix(K, dtype=np.float64)
        self.diag = check_operator(K, n)
        self.p = params.quantised()
        self.Ks = sp.csr_matrix(sp.diags(1.0 / self.diag) @ K)
        self.bs = np.asarray(b, dtype=np.float64) / self.diag
        self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        half = self.p.neurons // 2
        self.sign = np.concatenate([np.ones(half), -np.ones(half)])
        self.theta = np.tile(np.arange(half) + 0.5, 2)
        half_f = self.p.neurons / 2
        # anti-windup: the readout moves at most N/2 quanta per step, so the velocity the
        # integral asks for (h k_i z) and the coding error V are held to what it can do
        self.zmax = half_f / (self.p.dt * self.p.k_i) if self.p.k_i else np.inf
        self.vmax = half_f + 0.5
        # fan-out of a dof's spike: its matrix row (the pattern is symmetric), owned here
        self.rownnz = np.diff(self.Ks.indptr).astype(np.int64)
        self.fixed = self.p.mode == "fixed"
        if self.fixed:
            self._quantise()
        self.reset()

    # ------------------------------------------------------------------ fixed point
    def _quantise(self) -> None:
        """Integer weights, bias, thresholds and gains of the fixed-point mode."""
        p, F = self.p, self.p.frac_bits
        wmax = float(self.comm.max(abs(self.Ks).max()))
        self.wq = int(math.floor(math.log2((2 ** (p.weight_bits - 1) - 1) / wmax)))
        self.Kq = _round_keeping_row_sums(self.Ks, self.wq, self.n)
        self.bq = np.round(self.bs / p.gamma * 2.0**F).astype(np.int64)
        self.sign_q = self.sign.astype(np.int64)
        self.theta_q = ((2 * np.tile(np.arange(p.neurons // 2), 2) + 1)
                        * (np.int64(1) << (F - 1))).astype(np.int64)
        self.vmax_q = np.int64(round(self.vmax * 2.0**F))
        ki = round(p.k_i * 2.0**p.gain_bits) * 2.0**-p.gain_bits
        self.zmax_q = np.int64(min(p.neurons / 2 / (p.dt * ki) * 2.0**F, 2.0**62)
                               if ki else 2**62)
        g = 2.0**p.gain_bits
        self.gq = {f: int(round(getattr(p, f) * g)) for f in
                   ("k_p", "k_i", "leak", "lambda_d", "lambda_v")}

    def quantised_system(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """(K̃, b̃) as the fixed-point circuit represents them (float64 values)."""
        if not self.fixed:
            return self.Ks, self.bs
        Kq = sp.csr_matrix(self.Kq.astype(np.float64) * 2.0**-self.wq)
        return Kq, self.bq * 2.0**-self.p.frac_bits * self.p.gamma

    # ------------------------------------------------------------------ state
    def reset(self, x0: np.ndarray | None = None) -> None:
        """Cold start (x̂ = 0), or a warm start whose readout is x0 rounded to the γ grid."""
        n, N, p = self.n, self.p.neurons, self.p
        dt = np.int64 if self.fixed else np.float64
        shape = (n, N)
        self.V, self.z = np.zeros(shape, dt), np.zeros(shape, dt)
        self.c_plus = np.zeros(n, np.int64)
        self.c_minus = np.zeros(n, np.int64)
        self.step_index = 0
        self.counts = {"steps": 0, "spikes": 0, "syn_slow": 0, "syn_fast": 0}
        R = np.zeros(n) if x0 is None else np.round(np.asarray(x0, np.float64) / p.gamma)
        Rl = np.concatenate([R, self.comm.exchange(R)])
        self.avg = (R * p.gamma).copy()
        if self.fixed:
            one = np.int64(1) << p.frac_bits
            Ri = R.astype(np.int64)
            self.R = Ri * one
            KR = _rshift(self.Kq @ Rl.astype(np.int64), self.wq - p.frac_bits)
            self.s_slow = -self.sign_q[None, :] * KR[:, None]
            self.s_fast = self.sign_q[None, :] * (Ri * self.gq["lambda_d"] * one
                                                  >> p.gain_bits)[:, None]
        else:
            self.R = R.copy()
            self.s_slow = -self.sign[None, :] * (self.Ks @ Rl)[:, None]
            self.s_fast = p.lambda_d * self.sign[None, :] * R[:, None]

    @property
    def readout(self) -> np.ndarray:
        """x̂ on the owned dofs (float64)."""
        if self.fixed:
            return self.R * (self.p.gamma * 2.0**-self.p.frac_bits)
        return self.R * self.p.gamma

    @property
    def readout_avg(self) -> np.ndarray:
        """x̄: the readout low-pass filtered over ``average`` steps (x̂ if average is 0)."""
        return self.avg if self.p.average else self.readout

    @property
    def nbytes(self) -> int:
        """Bytes of this rank's neuron states, readouts and weights."""
        K = self.Kq if self.fixed else self.Ks
        arrays = (self.V, self.z, self.s_slow, self.s_fast, self.R, self.avg,
                  K.data, K.indices, K.indptr)
        return int(sum(a.nbytes for a in arrays))

    @property
    def spiked(self) -> np.ndarray:
        """Spikes per owned dof in the last step (both signs)."""
        return self.c_plus + self.c_minus

    # ------------------------------------------------------------------ dynamics
    def _noise(self) -> np.ndarray | None:
        """Uniform noise in [−a, a] per neuron, keyed by (global id, neuron, step)."""
        if self.p.noise == 0:
            return None
        N = self.p.neurons
        key = (self.ids[:, None] * N + np.arange(N)[None, :]).astype(np.uint64)
        key = _splitmix(key ^ _splitmix(np.uint64(self.step_index + (self.p.seed << 32))))
        if self.fixed:
            a = int(round(self.p.noise * 2.0**self.p.frac_bits))
            return ((key >> np.uint64(33)).astype(np.int64) * (2 * a + 1) >> 31) - a
        return self.p.noise * ((key >> np.uint64(11)) * 2.0**-52 - 1.0)

    def _exchange_counts(self) -> np.ndarray:
        """Signed spike counts of the last step on owned + ghost dofs."""
        own = self.c_plus - self.c_minus
        return np.concatenate([own, self.comm.exchange(own)])

    def step(self) -> None:
        """Advance every owned neuron by one time step (collective: one ghost exchange)."""
        c_loc = self._exchange_counts()
        c = c_loc[: self.n]
        if self.fixed:
            fire = self._step_fixed(c_loc, c)
        else:
            fire = self._step_float(c_loc, c)
        self.c_plus = fire[:, self.sign > 0].sum(axis=1).astype(np.int64)
        self.c_minus = fire[:, self.sign < 0].sum(axis=1).astype(np.int64)
        N = self.p.neurons
        cnt = self.counts
        cnt["steps"] += 1
        if self.p.average:  # a second readout synapse, slower (decoder side, float64)
            self.avg += (self.readout - self.avg) / self.p.average
        spiked = self.spiked
        cnt["syn_slow"] += N * int(self.rownnz @ spiked)  # counted when emitted
        cnt["syn_fast"] += N * int(spiked.sum())
        cnt["spikes"] += int(spiked.sum())
        self.step_index += 1

    def _step_float(self, c_loc: np.ndarray, c: np.ndarray) -> np.ndarray:
        p, s = self.p, self.sign[None, :]
        h, decay = p.dt, 1.0 - p.dt * p.lambda_d
        d = self.Ks @ c_loc
        self.s_slow = decay * self.s_slow - s * d[:, None]
        self.s_fast = decay * self.s_fast + p.lambda_d * s * c[:, None]
        self.R = decay * self.R + c
        e = self.s_slow + s * (self.bs / p.gamma)[:, None]
        self.z = (1.0 - h * p.leak) * self.z + h * e
        drive = -p.lambda_v * self.V + p.k_p * e + p.k_i * self.z + self.s_fast
        self.V = self.V + h * drive - s * c[:, None]
        np.clip(self.z, -self.zmax, self.zmax, out=self.z)
        np.clip(self.V, -self.vmax, self.vmax, out=self.V)
        noise = self._noise()
        if noise is not None:
            self.V += noise
        return self.V >= self.theta[None, :]

    def _step_fixed(self, c_loc: np.ndarray, c: np.ndarray) -> np.ndarray:
        p, g, s = self.p, self.gq, self.sign_q[None, :]
        F, G, sh = p.frac_bits, p.gain_bits, p.shift + p.gain_bits
        d = _rshift(self.Kq @ c_loc, self.wq - F)
        self.s_slow = self.s_slow - _rshift(self.s_slow * g["lambda_d"], sh) - s * d[:, None]
        fast_in = (c * g["lambda_d"]) << (F - G) if F >= G else _rshift(c * g["lambda_d"], G - F)
        self.s_fast = self.s_fast - _rshift(self.s_fast * g["lambda_d"], sh) + s * fast_in[:, None]
        self.R = self.R - _rshift(self.R * g["lambda_d"], sh) + (c << F)
        e = self.s_slow + s * self.bq[:, None]
        self.z = self.z - _rshift(self.z * g["leak"], sh) + _rshift(e, p.shift)
        drive = (-g["lambda_v"] * self.V + g["k_p"] * e + g["k_i"] * self.z
                 + (self.s_fast << G))
        self.V = self.V + _rshift(drive, sh) - s * (c << F)[:, None]
        np.clip(self.z, -self.zmax_q, self.zmax_q, out=self.z)
        np.clip(self.V, -self.vmax_q, self.vmax_q, out=self.V)
        noise = self._noise()
        if noise is not None:
            self.V += noise
        return self.V >= self.theta_q[None, :]
