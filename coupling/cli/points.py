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

from coupling.cli.report import USER_ERRORS

__all__ = ["USER_ERRORS", "register", "points", "read_points"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `points` subcommand."""
    from coupling.cli import run_command

    p = run_command(sub, "points", "evaluate a trained run at the points of a CSV file",
                    "Values of a trained run at arbitrary points: the raw network (with its "
                    "boundary lift) or the P1 interpolant of its nodal values. Points outside "
                    "the mesh are refused.", points)
    p.add_argument("--file", required=True, help="CSV of points, one per line (x,y[,z])")
    p.add_argument("--mode", choices=("network", "interpolant"), default="network",
                   help="raw network (default) or interpolant of its nodal values")
    p.add_argument("--out", required=True, help="CSV to write: coordinates, then values")


def read_points(path: Path):
    """Points (n, d) from a CSV file; one-line ConfigError naming the file and line."""
    import numpy as np

    from fem.errors import ConfigError

    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--file", f"cannot read {path}: {exc}") from None
    rows = []
    for i, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            if not rows and i == 1:
                continue  # a header
            raise ConfigError("--file", f"{path}, line {i}: not numbers: {line.strip()!r}")\
                from None
        if len(rows[-1]) != len(rows[0]) or not np.all(np.isfinite(rows[-1])):
            raise ConfigError("--file", f"{path}, line {i}: expected {len(rows[0])} finite "
                              f"coordinates, got {line.strip()!r}")
    if not rows:
        raise ConfigError("--file", f"{path}: no points")
    return np.asarray(rows, dtype=np.float64)


def points(args: argparse.Namespace) -> int:
    """Evaluate RUN_DIR at the points of --file and write --out (collective)."""
    import numpy as np

    from coupling.training.parallel import collective_errors, set_threads_per_rank
    from meshes.fenics import MPI

    comm = MPI.COMM_WORLD
    out = Path(args.out)
    with collective_errors(comm, user_errors=USER_ERRORS):
        set_threads_per_rank(comm)
        pts = read_points(Path(args.file))  # every rank reads: the same one-line errors
        from coupling.runs.network import load_trained

        trainer = load_trained(Path(args.run_dir), comm)
        gdim = trainer.dmesh.mesh.geometry.dim
        if pts.shape[1] != gdim:
            from fem.errors import ConfigError

            raise ConfigError("--file", f"{args.file}: points have {pts.shape[1]} coordinates, "
                              f"the mesh is {gdim}D")
        mine = pts if comm.rank == 0 else pts[:0]
        values = trainer.disc.evaluate_at(trainer.net, mine, args.mode)
        if comm.rank == 0:
            vals = np.asarray(values).reshape(len(pts), -1)
            names = ["x", "y", "z"][:gdim]
            cols = ["u"] if vals.shape[1] == 1 else [f"u{i}" for i in range(vals.shape[1])]
            np.savetxt(out, np.column_stack([pts, vals]), delimiter=",", fmt="%.17g",
                       header=",".join(names + cols), comments="")
    if comm.rank == 0:
        print(f"neurofem: {len(pts)} values ({args.mode}) -> {out}", file=sys.stderr)
    return 0
