"""`neurofem query RUN --param name=value ...`: a trained parametric run at a new μ.

The network is evaluated at every dof for the given parameters (each named once, inside
the trained box), the field is written as XDMF (``--out``, default ``RUN/query``), and the
query is priced beside the FEM route at the same μ: its wall time (best of three) against
a DOLFINx assembly + solve (forms compiled beforehand, best of two), its energy in both
conventions (full = compute + memory, compute-only) from the spiking accounting, the FEM
solution's relative L2 distance, and the number of queries after which the training cost
has been paid back. API: :func:`coupling.residuals.parametric.time_query` and
``disc.to_function(net, mu)``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from coupling.cli import run_command
from coupling.cli.report import USER_ERRORS
from coupling.cli.report_bank import is_bank
from coupling.cli.report_parametric import is_parametric
from fem.cache import check_folder
from fem.errors import ConfigError
from validation.export import write_xdmf

__all__ = ["USER_ERRORS", "register", "query", "parse_params"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `query` subcommand."""

    p = run_command(sub, "query", "evaluate a trained parametric run at new parameters",
                    "The surrogate's field at a new parameter point (every parameter named, "
                    "inside the trained box), written as XDMF, with its time and energy "
                    "beside a FEM assembly + solve at the same point.", query)
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a parameter value (repeat for each parameter of the run)")
    p.add_argument("--out", default=None, help="folder for the field (default RUN/query)")
    p.add_argument("--rom", default=None, metavar="NPZ", help="a reduced basis written by "
                   "`neurofem rom` (rom-N<N>.npz): its row beside the network's")
    p.add_argument("--microstructure", default=None, metavar="N|FILE",
                   help="bank runs: held-out microstructure N of the run's bank, or a TOML "
                   "file with the drawn options (volume_fraction, n, seed) of a new one")


def parse_params(items: list[str]) -> dict[str, float]:
    """{name: value} from NAME=VALUE strings; one-line ConfigError naming a bad one."""

    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not sep or not name or not math.isfinite(v):
            raise ConfigError("--param", f"expected NAME=VALUE with a finite number, got "
                              f"{item!r}")
        if name in out:
            raise ConfigError("--param", f"{name!r} given twice")
        out[name] = v
    return out


def query(args: argparse.Namespace) -> int:
    """Evaluate RUN_DIR's network at --param values and write the field (collective)."""
    # deferred: loads DOLFINx, torch
    # deferred: loads DOLFINx, torch
    from coupling.training.parallel import collective_errors, set_threads_per_rank
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    run_dir = Path(args.run_dir)
    with collective_errors(comm, user_errors=USER_ERRORS):
        set_threads_per_rank(comm)
        values = parse_params(args.param)
        if args.microstructure is not None or is_bank(run_dir):
            from coupling.cli.query_bank import query_bank  # deferred: loads DOLFINx, torch

            result = query_bank(run_dir, args.microstructure, values, args.out, comm)
            if comm.rank == 0:
                print(json.dumps(result), flush=True)
            return 0
        if not is_parametric(run_dir):
            raise ConfigError(str(run_dir), "not a parametric run (its config.toml has no "
                              "[parameters] table); evaluate it with `neurofem points`")
        # deferred: loads DOLFINx, torch, Gmsh, SciPy
        # deferred: loads DOLFINx, torch, Gmsh, SciPy
        from coupling.runs.network import load_trained
        from coupling.training.callbacks import METRICS, read_metrics  # deferred: loads torch

        trainer = load_trained(run_dir, comm)
        mu = trainer.problem.box.parse(values)
        out = Path(args.out) if args.out else run_dir / "query"
        result = _run_query(trainer, mu, out, comm, read_metrics, METRICS, run_dir)
        if args.rom:  # the reduced-basis rival at the same μ (validation.rom)
            from validation.rom import rom_query  # deferred: loads DOLFINx, Gmsh, SciPy

            result["rom"] = rom_query(args.rom, trainer.problem, mu,
                                      trainer.disc.weights.double().numpy(),
                                      trainer.reference_cache)
    if comm.rank == 0:
        print(json.dumps(result), flush=True)
        print(f"neurofem: query {result['query_s'] * 1e3:.3g} ms vs FEM {result['fem_s'] * 1e3:.3g}"
              f" ms ({result['speedup']:.3g}x), rel. L2 vs FEM {100 * result['rel_l2']:.3g}% "
              f"-> {result['field']}", file=sys.stderr, flush=True)
        if "rom" in result:
            r = result["rom"]
            print(f"neurofem: ROM N={r['snapshots']} {r['online_field_s'] * 1e3:.3g} ms, rel. L2 "
                  f"vs FEM {100 * r['rel_l2']:.3g}%, {r['full_pj'] * 1e-6:.3g} µJ (45 nm full)",
                  file=sys.stderr, flush=True)
    return 0


def _run_query(trainer, mu, out: Path, comm, read_metrics, metrics_name, run_dir) -> dict:
    """Time, write and compare one query (collective)."""
    # deferred: loads DOLFINx, torch, Gmsh
    # deferred: loads DOLFINx, torch, Gmsh
    from coupling.residuals.parametric import reference_targets, time_query
    from coupling.training.checkpoint import atomic_write  # deferred: loads torch

    check_folder(out)
    records = read_metrics(run_dir / metrics_name) if comm.rank == 0 else []
    train_s = comm.bcast(records[-1]["wall_s"] if records else 0.0, root=0)
    result = time_query(trainer.disc, trainer.net, mu, train_s)
    disc, net = trainer.disc, trainer.net
    target = reference_targets(trainer.problem, mu[None], None, disc.n_owned)
    result["rel_l2"] = disc.errors(net, mu[None], target)[0]
    result["parameters"] = trainer.problem.box.as_dicts(mu)[0]
    u = disc.to_function(net, mu[None], name="u_network")
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    path = write_xdmf({"u_network": u}, out / "field.xdmf", trainer.problem.vector,
                      trainer.dmesh.cell_tags)
    result["field"] = str(path)
    if comm.rank == 0:
        atomic_write(out / "query.json", lambda f: f.write(json.dumps(result, indent=1).encode()))
    return result
