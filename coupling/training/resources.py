"""Memory and work a run config asks for, estimated before anything is allocated.

`neurofem train` calls :func:`check` on the validated config before building the mesh:
what a run holds at its peak (the FEM matrix and its factorisation, the space-time
sample grid, the network's parameters with Adam's state, and the activations saved for
backward over every point, layer and spiking time step; C-LIF: every rollout window) and
how much work the FEM reference is (dofs × time steps) are estimated from the config's
numbers (cells from the mesh size and domain, dofs, widths, steps × points, windows,
output points). A config beyond the machine's memory (``MemTotal``, or
``training.max_memory_gb``) or beyond :data:`MAX_DOF_STEPS` is refused in one line that
names the key driving it and the estimate::

    neurofem: error: config network.hidden: needs about 8.4e+03 GB (network activations
    at 1.2e+05 points ...), over the 62 GB limit; lower it or pass --force

The estimates are deliberately rough (a factor of a few), so the limits guard against
orders of magnitude — a typo'd ``1e8`` — not against a run that is merely large;
``--force`` skips the check.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from fem.errors import ConfigError

GB = 1024**3
MAX_DOF_STEPS = 1e11  # FEM dofs × time steps (~1 µs each: a day of solving)
CELLS_PER_UNIT = {2: 2.0, 3: 6.0}  # simplices per h^d (regular meshes)
NODES_PER_CELL = {1: 1.0, 2: 0.5, 3: 0.18}


@dataclass
class Estimate:
    """One resource a config asks for: the key that drives it, bytes and a description."""

    key: str
    bytes: float
    what: str


def machine_memory() -> float:
    """Physical memory of this machine in bytes (MemTotal; sysconf where /proc is absent)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def mesh_cells(mesh: Any) -> tuple[float, int]:
    """(estimated cells, dimension) of a MeshSpec or a C-LIF grid table."""
    if isinstance(mesh, dict):  # C-LIF grid: n cells per axis
        return float(math.prod(mesh["n"])), len(mesh["n"])
    if mesh.kind == "interval":
        size = mesh.size or 0.01
        x0, x1 = mesh.options.get("x0", 0.0), mesh.options.get("x1", 1.0)
        return (x1 - x0) / size, 1
    import meshes.registry as registry

    builder = registry.kinds()[mesh.kind]
    opts = registry.resolve(mesh.kind, mesh.size, mesh.options)
    if mesh.kind == "file":  # an imported geometry: only its cell cap is known
        return float(opts["max_cells"]), builder.dim
    fine = min(1.0, opts["refine"])
    per = CELLS_PER_UNIT.get(builder.dim, 6.0) / opts["size"] ** builder.dim
    estimate = per * (0.7 + 0.3 / fine**builder.dim)  # unit-sized domains, 30 % refined
    if estimate > 10 * opts["max_cells"]:  # the builder checks the exact domain; this is
        raise ConfigError("mesh.size", f"size={opts['size']:g} would give about "  # fast
                          f"{estimate:.2g} cells, over max_cells={opts['max_cells']}")
    return min(estimate, float(opts["max_cells"])), builder.dim


def _fem(problem, cells: float, dim: int) -> tuple[float, list[Estimate]]:
    """(dofs, estimates) of the FEM reference: matrix + LU fill, sampled space-time grid."""
    comps = dim if problem.vector else 1
    dofs = cells * NODES_PER_CELL[dim] * problem.degree**dim * comps
    fill = {1: 10, 2: 60, 3: 400}[dim]  # nonzeros per row of the LU factors
    out = [Estimate("mesh.size", dofs * fill * 16 * (1 + 0.3 * comps), f"{dofs:.2g} dofs "
                    "(matrix and factorisation)")]
    if problem.time is not None:
        grid = problem.output_points * problem.output_times
        out.append(Estimate("problem.output.points", grid * 8 * 3, f"{grid:.2g} space-time "
                            "samples (reference, points and residual)"))
    return dofs, out


def _net(network: dict, key: str) -> Any:
    """A [network] value as given, else the schema's default."""
    from coupling.config import NetworkTable

    return network.get(key, NetworkTable.model_fields[key].default)


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
    return out + _network(cfg, points), work


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
    total = sum(e.bytes for e in estimates)
    if total > limit:
        worst = max(estimates, key=lambda e: e.bytes)
        raise ConfigError(worst.key, f"needs about {total / GB:.3g} GB ({worst.what}: "
                          f"{worst.bytes / GB:.3g} GB), over the {limit / GB:.3g} GB limit; "
                          "lower it, raise training.max_memory_gb or pass --force")
    if work > MAX_DOF_STEPS:
        raise ConfigError("problem.time.dt", f"the FEM reference needs about {work:.2g} "
                          f"dof-steps (over {MAX_DOF_STEPS:.0e}); raise dt or coarsen the "
                          "mesh, or pass --force")
    return estimates
