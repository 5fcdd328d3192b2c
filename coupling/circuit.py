"""The spiking FEM circuit of a problem: its ``[circuit]`` table, build, run and measures.

Joins :mod:`fem.circuit_system` (K, b with Dirichlet rows removed, ghost exchange) and
:mod:`spiking.circuit` (the network dynamics). Gains are tuned from the operator
(Gershgorin bound L, Lanczos estimate μ of the smallest eigenvalue; a setup cost
counted in matrix–vector products), γ from a solution scale (the FEM solution's or a
warm start's max norm, or ``x_max``). Every measure is global (summed over ranks).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field

from fem.circuit_system import CircuitSystem
from fem.errors import ConfigError
from fem.schema import Table, validate
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


class CircuitTable(Table):
    """The ``[circuit]`` table of a run config (every key optional)."""

    neurons: int = Field(8, description="neurons per dof (even)")
    dt: float = Field(2.0**-4, gt=0, description="time step (a power of two in fixed mode)")
    mode: Literal["float", "fixed"] = "float"
    gains: Literal["auto", "manual"] = "auto"
    k_p: float = Field(0.0, ge=0)
    k_i: float = Field(64.0, ge=0)
    leak: float = Field(0.0, ge=0)
    lambda_d: float = Field(0.0, ge=0)
    lambda_v: float = Field(0.0, ge=0)
    gamma: float | None = Field(None, gt=0, description="readout weight (default: auto)")
    x_max: float | None = Field(None, gt=0, description="solution scale that sizes gamma")
    slew_steps: int = Field(256, ge=1, description="steps to cross x_max at full rate")
    noise: float = Field(0.0, ge=0)
    steps: int = Field(20000, ge=1)
    every: int = Field(10, ge=1, description="record the error every this many steps")
    targets: list[float] = Field(default_factory=lambda: [1e-2, 1e-3])
    hold: int = Field(500, ge=0, description="steps run after the last target is met")
    lanczos_steps: int = Field(200, ge=2, description="Lanczos products that estimate mu "
                               "(80 overestimated it 2.2x on a 9k-node disk; 150 was exact)")
    frac_bits: int = 20
    weight_bits: int = 16
    gain_bits: int = 8
    seed: int = Field(0, ge=0)
    average: float = Field(32.0, ge=0, description="time constant (steps) of the averaged "
                           "readout the targets are measured on; 0: the raw readout")


def parse_circuit(table: dict | None) -> CircuitTable:
    """The validated ``[circuit]`` table (ConfigError naming ``circuit.<key>``)."""
    return validate(CircuitTable, table or {}, "circuit")


@dataclass
class Built:
    """A circuit with what it was tuned from."""

    circuit: Circuit
    system: CircuitSystem
    info: dict = field(default_factory=dict)


def _params(cfg: CircuitTable, L: float, mu: float, x_max: float) -> CircuitParams:
    gains = (auto_gains(L, mu, cfg.dt) if cfg.gains == "auto"
             else {"k_p": cfg.k_p, "k_i": cfg.k_i, "leak": cfg.leak})
    try:
        gamma = cfg.gamma or auto_gamma(x_max, cfg.neurons, cfg.dt, cfg.lambda_d, cfg.slew_steps)
    except CircuitError:
        raise ConfigError("circuit.x_max", f"cannot size gamma from {x_max!r}; give "
                          "circuit.gamma or circuit.x_max") from None
    return CircuitParams(neurons=cfg.neurons, dt=cfg.dt, lambda_d=cfg.lambda_d,
                         lambda_v=cfg.lambda_v, gamma=gamma, noise=cfg.noise, mode=cfg.mode,
                         frac_bits=cfg.frac_bits, weight_bits=cfg.weight_bits,
                         gain_bits=cfg.gain_bits, seed=cfg.seed, average=cfg.average,
                         **gains)


def build(system: CircuitSystem, cfg: CircuitTable, x_scale: float) -> Built:
    """Tune and build the circuit of `system` (collective). x_scale: max |x| estimate."""
    t0 = time.perf_counter()
    if cfg.neurons < 2 or cfg.neurons % 2:
        raise CircuitError("neurons", f"{cfg.neurons!r}: expected an even integer >= 2")
    Ks_diag = system.K.diagonal()[: len(system.b)]
    probe = Circuit(system.K, system.b, CircuitParams(neurons=2), ids=system.ids,
                    comm=system.comm)  # checks symmetry and the diagonal
    L = gershgorin(probe.Ks, system.comm)
    mu = lanczos_min(system.K, Ks_diag, system.comm, cfg.lanczos_steps, cfg.seed, system.ids)
    p = _params(cfg, L, mu, cfg.x_max or x_scale)
    check_stable(p.quantised(), L)
    circuit = Circuit(system.K, system.b, p, ids=system.ids, comm=system.comm)
    d_sum = system.comm.sum(float(Ks_diag.sum()))
    info = {"L": L, "mu": mu, "condition": L / mu, "stable_dt": stable_dt(p.quantised(), L),
            "precision_bound_D": precision_bound(p.quantised(), L, mu, d_sum),
            "setup_matvecs": cfg.lanczos_steps, "params": p.as_dict(),
            "dofs": system.n_global, "neurons_total": system.n_global * p.neurons,
            "nnz": int(system.comm.sum(int(system.K.nnz))),
            "setup_s": time.perf_counter() - t0}
    return Built(circuit, system, info)


def norm(v: np.ndarray, system: CircuitSystem) -> float:
    """Global lumped-mass weighted L2 norm over the free dofs (an integral, not a mean)."""
    return math.sqrt(system.comm.sum(float(system.weights @ (v * v))))


@dataclass
class Trace:
    """A run's records and when it met each target."""

    records: list[dict]
    reached: dict[str, dict | None]
    counts: dict
    wall_s: float
    rates: np.ndarray  # spikes per owned free dof per step
    reached_raw: dict[str, dict | None] = field(default_factory=dict)  # the same, raw readout


def run(built: Built, target: np.ndarray, cfg: CircuitTable, *, steps: int | None = None,
        exact: np.ndarray | None = None, x0: np.ndarray | None = None, label: str = "cold",
        log=None) -> Trace:
    """Run from a cold (x0 None) or warm start; record relative errors (collective)."""
    c, comm, system = built.circuit, built.system.comm, built.system
    c.reset(x0)
    tn = norm(target, system)
    en = norm(exact, system) if exact is not None else None
    goals = sorted(cfg.targets, reverse=True)
    reached: dict[str, dict | None] = {f"{g:g}": None for g in goals}
    raw: dict[str, dict | None] = {f"{g:g}": None for g in goals}
    records, stop, spikes_dof = [], None, np.zeros(c.n)
    steps = steps or cfg.steps
    t0 = time.perf_counter()
    for k in range(steps + 1):
        if k:
            c.step()
            spikes_dof += c.spiked
        if k % cfg.every and k != steps and (stop is None or k < stop):
            continue
        rec = _record(c, system, k, target, tn, exact, en, label)
        rec["wall_s"] = time.perf_counter() - t0
        for g in goals:
            key, at = f"{g:g}", {"step": k, "spikes": rec["spikes"], "synaptic": rec["synaptic"]}
            if reached[key] is None and rec["rel_fem"] <= g:
                reached[key] = at
            if raw[key] is None and rec["rel_fem_raw"] <= g:
                raw[key] = at
        if stop is None and all(v is not None for v in reached.values()):
            stop = k + cfg.hold
        records.append(rec)
        if log is not None:
            log(rec)
        if stop is not None and k >= stop:
            break
    counts = {key: int(v if key == "steps" else comm.sum(int(v))) for key, v in c.counts.items()}
    return Trace(records, reached, counts, time.perf_counter() - t0,
                 spikes_dof / max(c.counts["steps"], 1), raw)


def _record(c: Circuit, system, k: int, target, tn, exact, en, label: str) -> dict:
    """One metrics record: errors vs FEM (and exact), cumulative spikes and events."""
    x, xa, comm = c.readout, c.readout_avg, system.comm
    rec = {"run": label, "step": k, "rel_fem": norm(xa - target, system) / tn,
           "rel_fem_raw": norm(x - target, system) / tn}
    if exact is not None:
        rec["rel_exact"] = norm(xa - exact, system) / en
    rec["spikes"] = int(comm.sum(int(c.counts["spikes"])))
    rec["synaptic"] = int(comm.sum(int(c.counts["syn_slow"] + c.counts["syn_fast"])))
    return rec


def energy(built: Built, trace: Trace, table=None, upto: dict | None = None) -> dict:
    """Priced operation counts of a run (or of its part up to a reached target)."""
    p = built.circuit.p
    steps = upto["step"] if upto else trace.counts["steps"]
    spikes = upto["spikes"] if upto else trace.counts["spikes"]
    syn = upto["synaptic"] if upto else trace.counts["syn_slow"] + trace.counts["syn_fast"]
    kw = {"dofs": built.info["dofs"], "steps": steps, "spikes": spikes, "synaptic": syn}
    out = price(circuit_ops(p, **kw), table)
    out["neuromorphic_pj"] = neuromorphic_pj(p, **kw)
    return out


def summary(built: Built, trace: Trace, table=None) -> dict:
    """JSON-ready result of one run: targets reached, counts, energy, final errors."""
    last = trace.records[-1]
    n, steps = built.info["dofs"], max(trace.counts["steps"], 1)
    out = {"reached": trace.reached, "reached_raw": trace.reached_raw,
           "counts": trace.counts, "wall_s": trace.wall_s,
           "s_per_step": trace.wall_s / steps, "final": last,
           "spikes_per_dof_step": trace.counts["spikes"] / (n * steps),
           "energy": energy(built, trace, table)}
    out["energy_to"] = {k: (energy(built, trace, table, v) if v else None)
                        for k, v in trace.reached.items()}
    return out
