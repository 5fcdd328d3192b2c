"""What a FEM reference asks for, estimated from the config before any mesh is built.

`neurofem fem solve` and `neurofem train` (through :mod:`coupling.training.resources`)
check these numbers first, so a typo'd ``size = 1e-4`` or ``dt = 1e-7`` is refused in
about a second with one line naming the key and the estimate, rather than running for
minutes with no output:

- cells from the mesh size and domain (``mesh.size``; the builder's ``max_cells``),
- dofs, and the memory of the matrix and its LU factors (``mesh.size``),
- the sampled space-time grid of a transient reference (``problem.output.points``),
- the time of the time loop: every step is a solve, ``steps × (STEP_S + dofs × DOF_STEP_S)``
  (``problem.time.dt``; measured here: 1.2e-4 s per step of a 101-dof 1D heat problem).

The estimates are deliberately rough (a factor of a few): they guard against orders of
magnitude. ``--force`` skips the check.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

GB = 1024**3
MAX_DOF_STEPS = 1e11  # FEM dofs × time steps (~1 µs each: a day of solving)
MAX_REFERENCE_S = 900.0  # estimated seconds of the reference's time loop (15 min)
STEP_S = 1.2e-4  # seconds per time step whatever the size (assembly of b, a solve call)
DOF_STEP_S = 1e-6  # seconds per dof and time step (back-substitution, sampling)
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
    """(estimated cells, dimension) of a [mesh] table or a C-LIF grid table (ConfigError naming
    ``mesh.size`` far beyond the builder's ``max_cells``)."""
    if isinstance(mesh, dict):  # C-LIF grid: n cells per axis
        return float(math.prod(mesh["n"])), len(mesh["n"])
    if mesh.kind == "interval":
        size = mesh.size or 0.01
        x0, x1 = mesh.options.get("x0", 0.0), mesh.options.get("x1", 1.0)
        return (x1 - x0) / size, 1
    import meshes.registry as registry  # deferred: loads Gmsh

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


def reference(problem, cells: float, dim: int) -> tuple[float, list[Estimate]]:
    """(dofs, memory estimates) of the FEM reference: matrix + LU fill, space-time grid."""
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


def time_steps(problem) -> int:
    """Time steps of a transient problem (1 for a static one)."""
    t = problem.time
    return 1 if t is None else max(1, round(t.t_end / t.dt))


def reference_seconds(problem, dofs: float) -> float:
    """Estimated seconds of the reference's solves (every time step is one)."""
    return time_steps(problem) * (STEP_S + dofs * DOF_STEP_S)


def check_time(problem, dofs: float) -> None:
    """Refuse a reference whose time loop is beyond MAX_DOF_STEPS or MAX_REFERENCE_S
    (ConfigError naming ``problem.time.dt`` and the estimate)."""
    if problem.time is None:
        return
    steps = time_steps(problem)
    work, seconds = dofs * steps, reference_seconds(problem, dofs)
    if work > MAX_DOF_STEPS or seconds > MAX_REFERENCE_S:
        raise ConfigError("problem.time.dt", f"the FEM reference needs {steps:.2g} time steps "
                          f"of {dofs:.2g} dofs ({work:.2g} dof-steps, about "
                          f"{_duration(seconds)}; the limit is {_duration(MAX_REFERENCE_S)}); "
                          "raise dt or coarsen the mesh, or pass --force")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.3g} h"


def check_solve(mesh, problem, limit_bytes: float | None = None, force: bool = False
                ) -> list[Estimate]:
    """Before `fem solve` builds anything: refuse (ConfigError naming the key and the
    estimate) a mesh, matrix or time loop beyond this machine (or `limit_bytes`)."""
    cells, dim = mesh_cells(mesh)  # refuses sizes far beyond max_cells even with force
    dofs, estimates = reference(problem, cells, dim)
    if force:
        return estimates
    limit = limit_bytes if limit_bytes is not None else machine_memory()
    total = sum(e.bytes for e in estimates)
    if total > limit:
        worst = max(estimates, key=lambda e: e.bytes)
        raise ConfigError(worst.key, f"needs about {total / GB:.3g} GB ({worst.what}: "
                          f"{worst.bytes / GB:.3g} GB), over the {limit / GB:.3g} GB of this "
                          "machine; lower it or pass --force")
    check_time(problem, dofs)
    return estimates
