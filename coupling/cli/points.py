"""`neurofem points RUN_DIR --file pts.csv --out vals.csv`: a trained run at arbitrary points.

The file holds one point per line, its coordinates separated by commas (a header line that
is not numbers is skipped). Two readings (``--mode``):

- ``network`` (default): the raw network with its boundary map, u = g̃ + D·N — defined
  everywhere and exactly on the Dirichlet data; between the nodes its error is the
  off-node error of the run's report (``offnode.network``);
- ``interpolant``: the P1 interpolant of the network's nodal values — equal to the nodal
  field at the nodes, with the report's ``offnode.interpolant`` error between them.

A point outside the mesh ends the command with one line naming it. The output CSV has
the coordinates then the value(s). Collective: ``mpiexec -n N`` gives the serial values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from coupling.cli import run_command
from coupling.cli.report import USER_ERRORS
from coupling.cli.report_parametric import is_parametric
from coupling.training.resources import GB, machine_memory
from fem.cache import atomic_write
from fem.errors import ConfigError

__all__ = ["USER_ERRORS", "register", "points", "read_points"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `points` subcommand."""

    p = run_command(sub, "points", "evaluate a trained run at the points of a CSV file",
                    "Values of a trained run at arbitrary points: the raw network (with its "
                    "boundary lift) or the P1 interpolant of its nodal values. Points outside "
                    "the mesh are refused.", points)
    p.add_argument("--file", required=True, help="CSV of points, one per line (x,y[,z])")
    p.add_argument("--mode", choices=("network", "interpolant"), default="network",
                   help="raw network (default) or interpolant of its nodal values")
    p.add_argument("--out", required=True, help="CSV to write: coordinates, then values")


MAX_POINTS = 10_000_000  # one call; more: split the file (each point is located in the mesh)
BYTES_PER_POINT = 8 * 12  # coordinates, values, the output table and its text, float64


def read_points(path: Path, limit_bytes: float | None = None):
    """Points (n, d) from a CSV file, streamed line by line; one-line ConfigError naming the
    file (and line) if it cannot be read, is not numbers, or is too large (checked from its
    size before reading: at most :data:`MAX_POINTS` points and `limit_bytes` of memory)."""
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError("--file", f"cannot read {path}: {exc.strerror or exc}") from None
    with fh:
        check_size(path, size, fh.read(65536), limit_bytes)
        fh.seek(0)
        rows: list[list[float]] = []
        blocks, width = [], None
        for i, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigError("--file", f"{path}, line {i}: not UTF-8 text") from None
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                row = [float(v) for v in line.split(",")]
            except ValueError:
                if width is None and i == 1:
                    continue  # a header
                raise ConfigError("--file", f"{path}, line {i}: not numbers: "
                                  f"{line.strip()[:80]!r}") from None
            width = len(row) if width is None else width
            if len(row) != width or not all(np.isfinite(row)):
                raise ConfigError("--file", f"{path}, line {i}: expected {width} finite "
                                  f"coordinates, got {line.strip()[:80]!r}")
            rows.append(row)
            if len(rows) == 65536:  # a block at a time: memory ~ the array, not Python lists
                blocks.append(np.asarray(rows, dtype=np.float64))
                rows = []
    if rows:
        blocks.append(np.asarray(rows, dtype=np.float64))
    if not blocks:
        raise ConfigError("--file", f"{path}: no points")
    return np.concatenate(blocks)


def check_size(path: Path, size: int, head: bytes, limit_bytes: float | None = None) -> int:
    """Points a file of `size` bytes holds, estimated from its first lines (`head`); refused
    (ConfigError naming --file and the estimate) above MAX_POINTS or `limit_bytes`."""

    lines = [ln for ln in head.splitlines() if ln.strip()]
    per_line = max(4.0, (sum(map(len, lines)) + len(lines)) / max(1, len(lines)))
    n = int(size / per_line)
    limit = limit_bytes if limit_bytes is not None else 0.25 * machine_memory()
    need = n * BYTES_PER_POINT
    if n > MAX_POINTS or need > limit:
        raise ConfigError("--file", f"{path}: {size / GB:.3g} GB, about {n:.2g} points "
                          f"(needs about {need / GB:.3g} GB; at most {MAX_POINTS:.0e} points "
                          f"and {limit / GB:.3g} GB per call): split the file")
    return n


def points(args: argparse.Namespace) -> int:
    """Evaluate RUN_DIR at the points of --file and write --out (collective)."""

    # deferred: loads DOLFINx, torch
    # deferred: loads DOLFINx, torch
    from coupling.training.parallel import collective_errors, set_threads_per_rank
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    out = Path(args.out)
    with collective_errors(comm, user_errors=USER_ERRORS):
        set_threads_per_rank(comm)
        _refuse_parametric(Path(args.run_dir))
        if out.is_symlink():  # checked before any work (and atomic_write refuses it again)

            raise ConfigError("--out", f"{out} is a symbolic link: refusing to write through "
                              "it; remove it or choose another file")
        pts = read_points(Path(args.file))  # every rank reads: the same one-line errors
        # deferred: loads DOLFINx, torch, Gmsh, SciPy
        # deferred: loads DOLFINx, torch, Gmsh, SciPy
        from coupling.runs.network import load_trained

        trainer = load_trained(Path(args.run_dir), comm)
        gdim = trainer.dmesh.mesh.geometry.dim
        if pts.shape[1] != gdim:
            raise ConfigError("--file", f"{args.file}: points have {pts.shape[1]} coordinates, "
                              f"the mesh is {gdim}D")
        mine = pts if comm.rank == 0 else pts[:0]
        values = trainer.disc.evaluate_at(trainer.net, mine, args.mode)
        if comm.rank == 0:
            vals = np.asarray(values).reshape(len(pts), -1)
            names = ["x", "y", "z"][:gdim]
            cols = ["u"] if vals.shape[1] == 1 else [f"u{i}" for i in range(vals.shape[1])]
            table = np.column_stack([pts, vals])
            atomic_write(out, lambda f: np.savetxt(  # never through a link
                f, table, delimiter=",", fmt="%.17g", header=",".join(names + cols),
                comments=""))
    if comm.rank == 0:
        print(f"neurofem: {len(pts)} values ({args.mode}) -> {out}", file=sys.stderr)
    return 0


def _refuse_parametric(run_dir: Path) -> None:
    """A parametric run's network takes μ too: refused in one line (not a traceback)."""

    if is_parametric(run_dir):
        raise ConfigError("RUN_DIR", f"{run_dir} is a parametric run ([parameters]): its field "
                          "depends on μ, and `neurofem points` evaluates a single field; use "
                          "`neurofem report` (held-out μ) or the Python API")
