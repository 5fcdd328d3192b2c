"""`neurofem bench [--quick] [--only NAME] [--mpi N] [--out DIR]`: the benchmark grid;
`neurofem bench --pareto PROBLEM [--quick]`: the error vs energy sweep (benchmarks.pareto).

A thin launcher of the :mod:`benchmarks` harness: every problem × method cell of
:mod:`benchmarks.grid` (each problem in its own worker process, one thread per rank),
and with ``--mpi N`` the strong-scaling study of problem 6 on 1 and N ranks; writes
``DIR/<date>-<machine>.json`` and the Markdown table beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.grid import METHODS, PROBLEMS, BenchError
from benchmarks.harness import RESULTS, Options, command_line, run
from benchmarks.pareto import load, sweep
from fem.cache import OutputError, check_folder

USER_ERRORS = (BenchError,)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `bench` subcommand."""

    p = sub.add_parser("bench", help="run the benchmark grid (problems × methods), write "
                       "JSON + Markdown results",
                       description="Train every problem × method cell on this machine and "
                       "record error, spiking activity, energy, time to accuracy and memory. "
                       f"Problems: {', '.join(PROBLEMS)}. Methods: {', '.join(METHODS)}.")
    p.add_argument("--quick", action="store_true",
                   help="tiny meshes and 30 steps per cell (a smoke run, minutes)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only this problem, method or problem/method (repeatable)")
    p.add_argument("--mpi", type=_at_least_one, default=1, metavar="N",
                   help="also run problem 6 (vsn-galerkin) on N ranks: the scaling study")
    p.add_argument("--out", type=Path, default=RESULTS, metavar="DIR",
                   help=f"results folder (default {RESULTS})")
    p.add_argument("--steps", type=_at_least_one, metavar="N",
                   help="override every cell's step budget (default: each problem's own)")
    p.add_argument("--runs", type=Path, metavar="DIR",
                   help="keep the run directories here (default: a temporary folder)")
    p.add_argument("--pareto", metavar="PROBLEM",
                   help="instead of the grid: the error vs energy Pareto sweep of spiking "
                   "designs on PROBLEM (lshape, bracket, cube-spheres, rve or a config file); "
                   "JSON + Markdown + PNG into DIR (benchmarks.pareto)")
    p.set_defaults(handler=bench)


def _at_least_one(text: str) -> int:
    """An integer >= 1 (argparse type: refused in one line otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected an integer >= 1")
    return value


def check_args(args: argparse.Namespace) -> None:
    """Everything about the arguments that can be checked before any work (BenchError, one
    line): ranks and steps >= 1, --out a writable folder (not
    an existing file), the --pareto config valid (benchmarks.pareto.load)."""

    for flag in ("mpi", "steps"):
        value = getattr(args, flag, None)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise BenchError(f"--{flag} {value}: expected an integer >= 1")
    try:
        check_folder(args.out, "--out")
    except OutputError as exc:
        raise BenchError(str(exc)) from None
    if args.pareto:
        load(args.pareto, args.quick, args.steps)


def bench(args: argparse.Namespace) -> int:
    """Run the grid and print where the results went."""

    check_args(args)  # before any work: a sweep must not run for an hour and then fail

    argv = sys.argv[1:] if sys.argv and Path(sys.argv[0]).name == "neurofem" else None
    cmd = command_line(argv) if argv is not None else command_line(_rebuild(args))
    if args.pareto:
        doc = sweep(args.pareto, quick=args.quick, steps=args.steps, out=args.out, command=cmd)
        print(f"neurofem: bench --pareto: {len(doc['records'])} designs, {doc['total_s']:.0f} s "
              f"-> {', '.join(doc['paths'])}", file=sys.stderr, flush=True)
        return 0
    doc = run(Options(quick=args.quick, only=list(args.only), mpi=args.mpi, out=args.out,
                      runs=args.runs, steps=args.steps, command=cmd))
    failed = [r for r in doc["records"] if r["status"] == "failed"]
    print(f"neurofem: bench: {len(doc['records'])} cells, {len(failed)} failed, "
          f"{doc['total_s']:.0f} s -> {', '.join(doc['paths'])}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def _rebuild(args: argparse.Namespace) -> list[str]:
    """The `bench` arguments as typed, rebuilt from `args` (run as `python -m coupling.cli`)."""
    out = ["bench"] + (["--quick"] if args.quick else [])
    out += ["--pareto", args.pareto] if args.pareto else []
    for name in args.only:
        out += ["--only", name]
    if args.mpi != 1:
        out += ["--mpi", str(args.mpi)]
    if args.steps:
        out += ["--steps", str(args.steps)]
    return out + ["--out", str(args.out)]
