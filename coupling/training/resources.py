"""Memory and work a run config asks for, estimated before anything is allocated.

`neurofem train` calls :func:`check` on the validated config before building the mesh:
what a run holds at its peak (the FEM matrix and its factorisation, the space-time
sample grid, the network's parameters with Adam's state, and the activations saved for
backward over every point, layer and spiking time step; C-LIF: every rollout window) and
how much work the FEM reference is (dofs × time steps) are estimated from the config's
numbers (cells from the mesh size and domain, dofs, widths, steps × points, windows,
output points), plus the widest layer over one no-grad evaluation chunk (off-node probe,
report), and for a parametric run ``[parameters]``: activations over batch × points and
the validation / held-out references (μ × dofs × channels) with the time of their FEM
solves. The FEM side (cells, dofs, the reference's time loop: steps × (per-step cost +
dofs)) is :mod:`fem.resources`, shared with ``neurofem fem solve``. A config beyond the
machine's memory (``MemTotal``, or ``training.max_memory_gb``), :data:`MAX_DOF_STEPS` or
:data:`MAX_REFERENCE_S` is refused in one line that names the key driving it and the
estimate::

    neurofem: error: config network.hidden: needs about 8.4e+03 GB (network activations
    at 1.2e+05 points ...), over the 62 GB limit; lower it or pass --force

The estimates are deliberately rough (a factor of a few), so the limits guard against
orders of magnitude — a typo'd ``1e8`` — not against a run that is merely large;
``--force`` skips the check.
"""

from __future__ import annotations

from typing import Any

from fem.errors import ConfigError
from fem.resources import (  # the FEM side, shared with `fem solve`
    GB,
    MAX_DOF_STEPS,
    MAX_REFERENCE_S,
    Estimate,
    check_time,
    machine_memory,
    mesh_cells,
    time_steps,
)
from fem.resources import reference as _fem

EVAL_CHUNK = 65_536  # rows per no-grad network evaluation (coupling.pointwise.CHUNK)
EVAL_POINTS_PER_CELL = 6  # off-node probe and measures: quadrature points per cell
SOLVE_S, SOLVE_DOF_S = 0.4, 2e-5  # one parametric FEM solve per channel (measured: 0.42 s
# for 794 dofs, 3 channels: 60 more validation μ took 75 s in setup)
PROCESS_BYTES = 1.2 * GB  # the process before any run data (torch, DOLFINx, PETSc loaded)
MAX_SOLVES_S = 300.0  # validation + held-out references of a parametric run (5 min)

__all__ = ["GB", "MAX_DOF_STEPS", "MAX_REFERENCE_S", "Estimate", "check", "estimate",
           "limit_bytes", "machine_memory", "mesh_cells"]


def _net(network, key: str) -> Any:
    """A value of the validated [network] table (spiking.MLPConfig; defaults filled in), or
    of a raw table (its value, else the default)."""
    if not isinstance(network, dict):
        return getattr(network, key)
    if key in network:
        return network[key]
    from spiking.config import MLPConfig  # deferred: loads torch

    return getattr(MLPConfig(), key)


def _widths(network: dict) -> list[int]:
    return [max(3, 2 * int(_net(network, "fourier_features")))] + list(_net(network, "hidden"))


def _network(cfg, points: float) -> list[Estimate]:
    """Parameters (+ Adam), and activations kept for backward at every point."""
    net = cfg.network
    widths = _widths(net)
    params = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    steps = int(_net(net, "num_steps")) if _net(net, "neuron") != "ann" else 1
    width = 8 if cfg.training.dtype == "float64" else 4
    acts = points * sum(widths) * steps * width * 6  # input, membrane, spikes, grads, ...
    # Name what is out of the ordinary: the points (mesh or sample grid) or the widths.
    key = "network.hidden" if sum(widths) * steps / 1e3 > points / 1e5 else (
        "problem.output.points" if cfg.problem.time is not None else "mesh.size")
    return [Estimate("network.hidden", params * width * 4, f"{params:.2g} parameters"),
            Estimate(key, acts, f"network activations at {points:.2g} points, "
                     f"{steps} spiking steps")]


def _evaluation(cfg, cells: float) -> Estimate:
    """The widest layer over one no-grad evaluation chunk (off-node probe, measures, report:
    up to EVAL_CHUNK points at a time; its linear output, activation and spikes)."""
    widths = _widths(cfg.network)
    steps = int(_net(cfg.network, "num_steps")) if _net(cfg.network, "neuron") != "ann" else 1
    rows = min(EVAL_CHUNK, cells * EVAL_POINTS_PER_CELL)
    width = 8 if cfg.training.dtype == "float64" else 4
    # copies of a (rows, width) array alive at once: linear output, membrane, spikes and
    # surrogate per spiking step, plus the probe's values (measured: peak RSS grew by 4.6 GB
    # for one 20000-unit layer over 3.6e3 points, 2 steps, float32 = 16 copies)
    copies = 4 * (1 + steps) + 4
    return Estimate("network.hidden", rows * max(widths) * width * copies,
                    f"a layer of {max(widths)} units over {rows:.2g} evaluation points")


def _parameters(cfg, points: float, dofs: float) -> tuple[list[Estimate], float]:
    """A parametric run ([parameters]): activations over batch × points, the validation
    and held-out references (μ × dofs × channels), and the seconds of their FEM solves."""
    box = cfg.parameters
    channels = 1 + len(box)  # at most one load channel per parameter, plus the fixed load
    widths = _widths(cfg.network)
    steps = int(_net(cfg.network, "num_steps")) if _net(cfg.network, "neuron") != "ann" else 1
    width = 8 if cfg.training.dtype == "float64" else 4
    acts = box.batch * points * (sum(widths) + channels) * steps * width * 6
    out = [Estimate("parameters.batch", acts, f"network activations for {box.batch} μ × "
                    f"{points:.2g} points, {steps} spiking steps"),
           Estimate("parameters.validation", box.validation * dofs * channels * 8 * 2,
                    f"{box.validation} validation references × {dofs:.2g} dofs × "
                    f"{channels} channels"),
           Estimate("parameters.held_out", box.held_out * dofs * channels * 8 * 2,
                    f"{box.held_out} held-out references × {dofs:.2g} dofs × "
                    f"{channels} channels")]
    seconds = (box.validation + box.held_out) * channels * (SOLVE_S + dofs * SOLVE_DOF_S)
    return out, seconds


def _clif(cfg, cells: float) -> list[Estimate]:
    """Rollout windows: states and network activations at every cell face and step."""
    c = cfg.clif
    faces = cells * 3
    per_step = faces * (sum(c.hidden) + 8) * 4 * 3
    return [Estimate("clif.window", per_step * c.window * c.batch,
                     f"{c.batch} windows of {c.window} steps over {faces:.2g} faces")]


def estimate(cfg) -> tuple[list[Estimate], float]:
    """(memory estimates, FEM dof-steps) of a validated RunConfig / CLIFRunConfig."""
    mesh = cfg.mesh if cfg.mesh is not None else getattr(cfg, "grid", None)
    cells, dim = mesh_cells(mesh)
    dofs, out = _fem(cfg.problem, cells, dim)
    time = cfg.problem.time
    work = dofs * (time.steps if time is not None else 1)
    if hasattr(cfg, "clif"):
        return out + _clif(cfg, cells), work
    points = dofs / (dim if cfg.problem.vector else 1)
    if time is not None:
        points = cfg.problem.output_points * cfg.problem.output_times
    out = out + _network(cfg, points) + [_evaluation(cfg, cells)]
    if getattr(cfg, "parameters", None) is not None:
        out += _parameters(cfg, points, dofs)[0]
    return out, work


def limit_bytes(cfg) -> float:
    """The memory limit: training.max_memory_gb if set, else this machine's memory."""
    gb = getattr(getattr(cfg, "training", None), "max_memory_gb", None)
    return gb * GB if gb else machine_memory()


def check(cfg, force: bool = False) -> list[Estimate]:
    """Refuse (ConfigError naming the key) a config beyond the memory or work limits."""
    estimates, work = estimate(cfg)
    if force:
        return estimates
    limit = limit_bytes(cfg)
    total = sum(e.bytes for e in estimates) + PROCESS_BYTES
    if total > limit:
        worst = max(estimates, key=lambda e: e.bytes)
        raise ConfigError(worst.key, f"needs about {total / GB:.3g} GB ({worst.what}: "
                          f"{worst.bytes / GB:.3g} GB), over the {limit / GB:.3g} GB limit; "
                          "lower it, raise training.max_memory_gb or pass --force")
    problem = cfg.problem
    check_time(problem, work / time_steps(problem))  # the reference's time loop
    if getattr(cfg, "parameters", None) is not None:
        _, dim = mesh_cells(cfg.mesh)
        dofs = work / time_steps(problem)
        _, seconds = _parameters(cfg, dofs / (dim if problem.vector else 1), dofs)
        if seconds > MAX_SOLVES_S:
            box = cfg.parameters
            key = "parameters.held_out" if box.held_out >= box.validation else \
                "parameters.validation"
            raise ConfigError(key, f"{box.validation} validation + {box.held_out} held-out μ "
                              f"need about {(box.validation + box.held_out) * (1 + len(box))}"
                              f" FEM solves of {dofs:.2g} dofs, about {seconds / 60:.0f} min "
                              f"(over {MAX_SOLVES_S / 60:.0f} min); lower it or pass --force")
    return estimates
