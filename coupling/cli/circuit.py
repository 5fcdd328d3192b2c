"""`neurofem circuit CONFIG [--from RUN] [--steps N] --out DIR`: the training-free spiking solver.

Builds the spiking FEM circuit (:mod:`coupling.circuit`) of CONFIG's [mesh]/[problem]
(its ``[circuit]`` table tunes it) and runs it from a cold start; with ``--from RUN`` (a
`neurofem train` run of the same mesh and problem) also from the trained network's nodal
values. Writes DIR/config.toml, metrics.jsonl (one record per logged step and start),
summary.json, report.md and the figures (convergence, spike rates on the mesh).
Launch in parallel with ``mpiexec -n N``; rank 0 alone writes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

import spiking
from coupling.cli.report_circuit import write_outputs
from coupling.cli.train import USER_ERRORS
from fem.errors import ConfigError

__all__ = ["USER_ERRORS", "register", "circuit"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `circuit` subcommand."""
    p = sub.add_parser("circuit", help="solve a problem with a spiking FEM circuit (training-free)",
                       description="Spike-coding populations built from the assembled operator "
                       "(NeuroFEM); cold start, and warm start from a trained run (--from).")
    p.add_argument("config", help="run config (TOML) with [mesh], [problem], optional [circuit]")
    p.add_argument("--from", dest="from_run", metavar="RUN",
                   help="a `neurofem train` run whose network warm-starts the circuit")
    p.add_argument("--steps", type=int, help="override circuit.steps")
    p.add_argument("--out", required=True, help="run directory to create")
    p.set_defaults(handler=circuit)


def _attr(*paths: str):
    """The first importable 'module:attribute' (coupling is being reorganised)."""
    for path in paths:
        module, _, name = path.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"none of {paths} found")


def _same_tables(doc: dict, run_doc: dict) -> None:
    """Refuse a warm start from a run of another mesh or problem."""

    for key in ("mesh", "problem"):
        if key in doc and doc[key] != run_doc.get(key):
            raise ConfigError(key, f"differs from the [{key}] of the --from run; the warm "
                              "start needs the run's own mesh and problem")


def _setup(doc: dict, from_run: str | None, comm) -> dict:
    """Mesh, problem, operators, FEM solution at owned dofs, and the trained run if any."""

    # deferred: loads DOLFINx
    # deferred: loads DOLFINx
    from fem.config import load_toml, parse_mesh, parse_problem, require_table
    from fem.problems import build_problem  # deferred: loads DOLFINx, Gmsh

    if from_run:
        load_trained = _attr("coupling.runs.network:load_trained",
                             "coupling.training.trainer:load_trained")
        run_dir = Path(from_run)
        _same_tables(doc, load_toml(run_dir / "config.toml"))
        trainer = load_trained(run_dir, comm)
        disc = trainer.disc
        return {"problem": trainer.problem, "ops": disc.operators, "dmesh": trainer.dmesh,
                "fem": disc.target.numpy().astype(np.float64), "trainer": trainer,
                "spec": trainer.cfg.problem, "fem_s": None}
    mesh_spec = parse_mesh(require_table(doc, "mesh"))
    spec = parse_problem(require_table(doc, "problem"))
    dmesh = mesh_spec.build(comm)
    problem = build_problem(dmesh, spec)
    t0 = time.perf_counter()
    sol = problem.solve()
    fem_s = time.perf_counter() - t0
    n_owned = problem.V.dofmap.index_map.size_local * problem.V.dofmap.index_map_bs
    return {"problem": problem, "ops": None, "dmesh": dmesh, "spec": spec, "trainer": None,
            "fem": sol.u.x.array[:n_owned].copy(), "fem_s": fem_s}


def _exact(spec, system):
    """The problem's exact solution at the owned free dofs, or None."""

    if not getattr(spec, "exact", None):
        return None
    lay = system.layout
    pts = lay.coordinates[: lay.n_owned // lay.block_size].T
    vals = np.stack([e.numpy()(pts) for e in spec.exact[: lay.block_size]], axis=1)
    return vals.reshape(-1)[system.free]


def _network_start(trainer, system, comm) -> tuple:
    """The trained network at the owned free dofs, its wall time and energy (collective)."""
    import torch  # deferred: loads torch

    net, disc = trainer.net, trainer.disc
    monitor = spiking.ActivityMonitor(net)
    t0 = time.perf_counter()
    with torch.no_grad(), monitor:
        values = disc.evaluate(net).detach().cpu().double().numpy()
    wall = comm.max(time.perf_counter() - t0)
    nodes = comm.sum(system.layout.n_owned // system.layout.block_size)
    info = {"wall_s": wall, "points": int(nodes)}
    if getattr(net, "neuron", "ann") in ("vsn", "lif"):
        rep = spiking.energy_report(net, monitor)
        ops = sum((la.snn for la in rep.layers), spiking.energy.OpCounts())
        from spiking.prices import network_prices  # deferred: loads torch

        prices = network_prices(rep, int(nodes))["spiking"]
        info.update(pj=prices["full_pj"], compute_pj=prices["compute_pj"],
                    neuromorphic_pj=prices["neuromorphic_pj"], table=rep.table.name,
                    mac_acc=(ops.mac + ops.acc) * nodes, ann_pj=rep.ann_pj * nodes)
    return values[system.free], info


def circuit(args: argparse.Namespace) -> int:
    """Build and run the circuit of CONFIG (and its warm start from --from) into --out."""
    from coupling import circuit as cc  # deferred: loads DOLFINx, torch, SciPy
    from fem.config import load_toml  # deferred: loads DOLFINx
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    collective_errors = _attr("coupling.training.parallel:collective_errors")
    claimed = _attr("coupling.training.rundir:claimed")
    comm = MPI.COMM_WORLD
    result = None
    with collective_errors(comm, user_errors=USER_ERRORS):
        doc = load_toml(args.config)
        cfg = cc.parse_circuit(doc.get("circuit"))
        if args.steps is not None:
            cfg = cc.parse_circuit({**doc.get("circuit", {}), "steps": args.steps})
        with claimed(Path(args.out), "circuit", comm):
            result = _run(doc, cfg, args, comm)
    if result is None:
        return 2
    if comm.rank == 0:
        cold = result["cold"]["reached"]
        print(f"neurofem: circuit {result['system']['dofs']} dofs: cold start to "
              f"{_fmt_reached(cold)}; final rel. error vs FEM "
              f"{result['cold']['final']['rel_fem']:.3g} -> {args.out}", file=sys.stderr)
    return 0


def _fmt_reached(reached: dict) -> str:
    return ", ".join(f"{k} at step {v['step']}" if v else f"{k} not reached"
                     for k, v in reached.items())


def _run(doc: dict, cfg, args: argparse.Namespace, comm) -> dict:
    """Set up, run cold (and warm), write the run directory (collective)."""
    from coupling import circuit as cc  # deferred: loads DOLFINx, torch, SciPy
    from fem.circuit_system import circuit_system  # deferred: loads DOLFINx, SciPy

    s = _setup(doc, args.from_run, comm)
    system = circuit_system(s["problem"], s["ops"])
    target = s["fem"][system.free]
    exact = _exact(s["spec"], system)
    x_net, net_info = (None, None)
    if s["trainer"] is not None:
        x_net, net_info = _network_start(s["trainer"], system, system.comm)
    scale = system.comm.max(float(abs(target).max()) if len(target) else 0.0)
    built = cc.build(system, cfg, scale)
    out = Path(args.out)
    log = _metrics_log(out, comm)
    traces = {"cold": cc.run(built, target, cfg, exact=exact, label="cold", log=log)}
    if x_net is not None:
        traces["warm"] = cc.run(built, target, cfg, exact=exact, x0=x_net, label="warm", log=log)
        net_info["rel_fem"] = cc.norm(x_net - target, system) / cc.norm(target, system)
    fem_error = None
    if exact is not None:
        fem_error = cc.norm(target - exact, system) / cc.norm(exact, system)
    result = {"system": built.info, "fem_s": s["fem_s"], "network": net_info,
              "fem_error": fem_error, "config": doc, "argv": sys.argv[1:]}
    for name, tr in traces.items():
        result[name] = cc.summary(built, tr)
    result["memory"] = _memory(built, comm)
    return write_outputs(out, result, traces, built, s, comm)


def _memory(built, comm) -> dict:
    """Peak resident memory of any rank (whole process) and the circuit's own arrays (MB)."""

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    return {"ranks": comm.size, "peak_rss_mb_max_rank": comm.allreduce(rss, op=_mpi_max()),
            "circuit_mb_max_rank": comm.allreduce(built.circuit.nbytes / 2**20, op=_mpi_max()),
            "circuit_mb_total": comm.allreduce(built.circuit.nbytes / 2**20)}


def _mpi_max():
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    return MPI.MAX


def _metrics_log(out: Path, comm):
    """A metrics.jsonl writer (rank 0), truncated first."""
    if comm.rank != 0:
        return None
    path = out / "metrics.jsonl"
    path.write_text("")

    def log(rec: dict) -> None:
        with path.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    return log
