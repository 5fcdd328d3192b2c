"""`neurofem`: the command line that joins meshes, fem, spiking and validation into runs.

Each command module below adds its subcommands with ``register(subparsers)`` and
names the exception types that mean "bad input" in ``USER_ERRORS``; those end the
program with a one-line ``neurofem: error: ...`` and exit code 2, never a traceback.
Command modules import DOLFINx/torch lazily, so ``neurofem --help`` stays fast.

The package holds the commands of the coupling layer: ``train`` (train / resume),
``demo``, ``report``, ``points``, ``query`` and ``bench`` (a thin launcher of the
:mod:`benchmarks` harness); ``meshes.cli`` and ``fem.cli`` add the mesh and reference
commands. The demo's config ships with the package (``configs/``), so an installed
``neurofem demo`` needs no checkout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from coupling.cli.parser import OneLineParser

COMMAND_MODULES = ("meshes.cli", "fem.cli", "coupling.cli.train", "coupling.cli.demo",
                   "coupling.cli.report", "benchmarks.cli", "coupling.cli.points",
                   "coupling.cli.query", "coupling.cli.rom", "coupling.cli.circuit")

USAGE_EXIT = 2


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in COMMAND_MODULES]


def build_parser(modules: list[ModuleType] | None = None) -> argparse.ArgumentParser:
    """The `neurofem` argument parser with every registered subcommand."""
    parser = OneLineParser(
        prog="neurofem",
        description="Physics-informed spiking neural networks on irregular meshes, "
        "validated against DOLFINx finite-element references.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in modules or _command_modules():
        module.register(sub)
    return parser


def _mpi_world():
    """COMM_WORLD if a command already initialised MPI, else None (never starts MPI)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return None
    return mpi.COMM_WORLD


def run_command(sub: argparse._SubParsersAction, name: str, help: str, description: str,
                handler) -> argparse.ArgumentParser:
    """A subcommand that works on a run directory (its RUN_DIR positional and handler)."""
    p = sub.add_parser(name, help=help, description=description)
    p.add_argument("run_dir", help="run directory written by `neurofem train`")
    p.set_defaults(handler=handler)
    return p


def fail(message: str, code: int = USAGE_EXIT) -> int:
    """Print a one-line error; under MPI also abort the other ranks so none waits forever."""
    message = " ".join(str(message).split())  # one line, whatever the exception held
    comm = _mpi_world()
    if comm is None or comm.size == 1:
        print(f"neurofem: error: {message}", file=sys.stderr, flush=True)
        return code
    print(f"neurofem: error: [rank {comm.rank}] {message}", file=sys.stderr, flush=True)
    comm.Abort(code)
    return code  # not reached


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `neurofem` console script."""
    modules = _command_modules()
    args = build_parser(modules).parse_args(argv)
    user_errors = tuple(err for m in modules for err in getattr(m, "USER_ERRORS", ()))
    try:
        return int(args.handler(args) or 0)
    except user_errors as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
