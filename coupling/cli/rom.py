"""`neurofem rom CONFIG --snapshots N [N ...] --out DIR`: the reduced-basis rival of a run.

For a parametric config (a ``[parameters]`` table) it builds a POD–Galerkin reduced basis
(:mod:`fem.reduced`, pyMOR) from FEM snapshots at N scrambled-Sobol training points, per
load channel (``--mode channel``) or globally, and measures it at the config's held-out
points as `neurofem report` measures the network (:mod:`validation.rom`): field error,
E and G for homogenisation problems, the a posteriori bound beside the true error, offline
and online times, queries to pay back the offline cost. Writes DIR/rom.json, DIR/rom.md and
DIR/rom-N<N>.npz (the online arrays: `neurofem query RUN --rom DIR/rom-N<N>.npz`). A
reduced basis written to RUN/rom (``--out RUN/rom``) appears in `neurofem report RUN`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from coupling.cli.report import USER_ERRORS
from fem.errors import ConfigError

__all__ = ["USER_ERRORS", "register", "rom"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `rom` subcommand."""
    p = sub.add_parser("rom", help="build and measure a reduced basis of a parametric config",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("config", help="a parametric run config (TOML with [parameters])")
    p.add_argument("--snapshots", type=int, nargs="+", required=True, metavar="N",
                   help="snapshot (FEM solve) points; several give one row each")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--mode", choices=("channel", "global"), default="channel",
                   help="one basis per load channel (default) or one for all")
    p.add_argument("--reference", default=None,
                   help="folder caching the FEM solves (default: the user cache)")
    p.set_defaults(handler=rom)


def rom(args: argparse.Namespace) -> int:
    """Build, measure and save the reduced bases (one rank)."""
    from fem.problems.parametric import ParametricProblem  # deferred: loads DOLFINx, Gmsh
    from meshes.fenics import MPI  # deferred: loads DOLFINx
    from validation.rom import markdown, rom_rows  # deferred: loads DOLFINx, Gmsh, SciPy

    cfg = _load_config(args.config)
    if getattr(cfg, "parameters", None) is None:
        raise ConfigError("parameters", f"{args.config} has no [parameters] table: a reduced "
                          "basis is built for a parametric problem")
    for n in args.snapshots:
        if not 1 <= n <= 4096:
            raise ConfigError("--snapshots", f"{n}: expected 1..4096")
    comm = MPI.COMM_WORLD
    if comm.size > 1:
        raise ConfigError("rom", "the reduced basis is built on one rank (run without mpiexec)")
    problem = ParametricProblem(cfg.mesh.build(comm), cfg.problem, cfg.parameters)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = rom_rows(problem, args.snapshots, mode=args.mode, cache_dir=args.reference,
                    save_dir=out)
    rows.update(config=str(args.config), command=" ".join(["neurofem", "rom", *sys.argv[2:]]))
    (out / "rom.json").write_text(json.dumps(rows, indent=1, default=float))
    (out / "rom.md").write_text(markdown(rows))
    for r in rows["rows"]:
        print(f"neurofem: ROM N={r['snapshots']} (r={'/'.join(map(str, r['dims']))}): "
              f"median {100 * r['errors']['median']:.3g}%, worst {100 * r['errors']['max']:.3g}%,"
              f" offline {r['offline_s']:.3g} s, query {1e6 * r['online_field_s']:.3g} µs",
              file=sys.stderr)
    print(f"neurofem: wrote {out / 'rom.json'} and rom.md", file=sys.stderr)
    return 0


def _load_config(path: str):
    """The validated run config (the one schema of `neurofem train`)."""
    if not Path(path).is_file():
        raise ConfigError("config", f"{path}: no such file")
    config = importlib.import_module("coupling.config")
    return config.load_run_config(path)
