"""Coarse-to-fine against single-level training on the same wall-time budget.

    python -m benchmarks.coarse_to_fine examples/demo-rve-elasticity.toml \\
        --levels 0.2 --budget 120 --coarse-share 0.3 --out benchmarks/results/coarse-to-fine

For the config's mesh and problem it times the DOLFINx solve, then trains the config's
network twice for the same budget of seconds: on ``[mesh]`` alone, and through the meshes of
the same geometry at the ``--levels`` sizes (coarse to fine) before ``[mesh]``
(:class:`coupling.Levels` as a run's ``training.levels`` builds it: a fresh Adam and the
config's schedule restarting on each level, the coarse levels with the consistency term).
``--size`` trains on ``[mesh]`` at another size. Steps are planned from step rates
measured on each mesh (a short run of a throwaway network): the coarse levels share
``--coarse-share`` of the budget equally, the target level the rest, and the time to build
the coarse levels (mesh, FEM reference for their metrics, operators) counts against the
coarse-to-fine budget. Records the wall times, their ratio to the FEM solve and the errors
vs FEM on ``[mesh]``. Writes OUT.json and OUT.md with the machine load (``uptime``) and
the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import coupling
import validation
from fem.flops import best_time


def _rate(trainer, disc, comm, steps: int = 60, warm: int = 5) -> float:
    """Steps per second of the config's network on `disc` (a throwaway copy, after `warm`
    steps that pay the first call's one-off costs)."""
    net = trainer._network()
    lr = trainer.cfg.training.lr
    coupling.fit(net, disc, steps=warm, lr=lr, log_every=warm, comm=comm, handle_signals=False)
    comm.barrier()
    t0 = time.perf_counter()
    coupling.fit(net, disc, steps=steps, lr=lr, log_every=steps, comm=comm,
                 handle_signals=False)
    return steps / (time.perf_counter() - t0)


def _train(trainer, plan, comm, extra_s: float = 0.0) -> dict:
    """Train a fresh copy of the config's network on `plan` (a disc or Levels); time, errors."""
    import torch  # deferred: loads torch

    t = trainer.cfg.training
    torch.manual_seed(t.seed)
    net = trainer._network()
    comm.barrier()
    t0 = time.perf_counter()
    result = coupling.fit(net, plan, steps=None if isinstance(plan, coupling.Levels) else
                          trainer.planned, lr=t.lr, schedule=t.schedule, gamma=t.gamma,
                          step_size=t.step_size, log_every=10**9, comm=comm,
                          handle_signals=False)
    wall = time.perf_counter() - t0 + extra_s
    u = trainer.disc.to_function(net)
    errors = validation.compare(trainer.problem, u, reference=trainer.ref.u).numbers["errors"]
    return {"train_s": wall, "steps": result.step, "rel_l2": errors["l2"]["relative"],
            "stress_rel": errors.get("stress", {}).get("relative")}


def _dofs(disc) -> int:
    V = disc.problem.V
    return int(V.dofmap.index_map.size_global * V.dofmap.index_map_bs)


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write OUT.json / OUT.md (rank 0)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.coarse_to_fine",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("config")
    parser.add_argument("--levels", required=True, help="coarse mesh sizes, coarse to fine")
    parser.add_argument("--budget", type=float, required=True, help="training seconds each")
    parser.add_argument("--coarse-share", type=float, default=0.3,
                        help="share of the budget for the coarse levels together")
    parser.add_argument("--size", type=float, help="the target mesh size (default [mesh]'s)")
    parser.add_argument("--out", required=True, help="output path; .md and .json appended")
    args = parser.parse_args(argv)
    from coupling.config import load_run_config  # deferred: loads DOLFINx, torch
    from coupling.runs.hierarchy import COARSE_CONSISTENCY, level_disc  # deferred: DOLFINx
    from coupling.runs.network import Trainer  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.training.parallel import set_threads_per_rank  # deferred: loads DOLFINx
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    set_threads_per_rank(comm)
    load_before = os.popen("uptime").read().strip()
    cfg = load_run_config(args.config)
    if args.size is not None:
        cfg.mesh = cfg.mesh.model_copy(update={"size": args.size})
    sizes = [float(s) for s in args.levels.split(",")]
    scratch = comm.bcast(tempfile.mkdtemp(prefix="c2f-") if comm.rank == 0 else None)
    trainer = Trainer(cfg, Path(scratch), comm)
    trainer.setup()
    trainer.disc.offnode = False  # the time is the training's: no off-node probe inside fit
    fem_s = best_time(trainer.problem.solve, 3)  # assembly + factorisation + solve
    t0 = time.perf_counter()
    coarse = [level_disc(trainer, s, cfg.training.batch, COARSE_CONSISTENCY) for s in sizes]
    build_s = time.perf_counter() - t0
    for d in coarse:
        d.offnode = False
    rates = [_rate(trainer, d, comm) for d in [*coarse, trainer.disc]]
    share = args.budget * args.coarse_share / len(coarse)
    steps = [max(1, int(share * r)) for r in rates[:-1]]
    left = args.budget - build_s - sum(s / r for s, r in zip(steps, rates, strict=False))
    steps.append(max(1, int(left * rates[-1])))
    trainer.planned = max(1, int(args.budget * rates[-1]))
    single = {"method": "single level", **_train(trainer, trainer.disc, comm)}
    plan = coupling.Levels([coupling.Level(d, n, size=s) for d, n, s in
                            zip([*coarse, trainer.disc], steps, [*sizes, cfg.mesh.size],
                                strict=True)])
    levels = {"method": "coarse to fine", **_train(trainer, plan, comm, build_s)}
    if comm.rank == 0:
        _write(args, {"fem_solve_s": fem_s, "build_coarse_s": build_s,
                      "levels": [{"size": s, "dofs": _dofs(d), "steps_per_s": r, "steps": n}
                                 for s, d, r, n in zip([*sizes, cfg.mesh.size],
                                                       [*coarse, trainer.disc], rates, steps,
                                                       strict=True)],
                      "rows": [single, levels], "uptime_before": load_before}, comm.size)
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _write(args, doc: dict, ranks: int) -> None:
    import torch  # deferred: loads torch

    command = f"mpiexec -n {ranks} " if ranks > 1 else ""
    command += "python -m benchmarks.coarse_to_fine " + shlex.join(sys.argv[1:])
    doc = {"date": date.today().isoformat(), "command": command,
           "uptime_after": os.popen("uptime").read().strip(), "ranks": ranks,
           "threads": torch.get_num_threads(), "budget_s": args.budget, **doc}
    for r in doc["rows"]:
        r["ratio_to_fem"] = r["train_s"] / doc["fem_solve_s"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / (out.name + ".json")).write_text(json.dumps(doc, indent=1))
    lines = [f"# Coarse to fine vs single level: {args.config}"
             + (f" at size {args.size}" if args.size else ""), "", f"`{command}`", "",
             f"{doc['date']}, {ranks} rank(s) × {doc['threads']} thread(s); budget "
             f"{args.budget:.0f} s of training each", "",
             f"- load before: `{doc['uptime_before']}`", f"- load after: `{doc['uptime_after']}`",
             "", f"FEM solve on [mesh] (best of 3): {doc['fem_solve_s']:.3f} s; coarse levels "
             f"built (mesh, FEM reference, operators) in {doc['build_coarse_s']:.1f} s", "",
             "| method | steps | train s | × FEM | displacement rel. L2 | stress rel. L2 |",
             "|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        stress = f"{r['stress_rel']:.2%}" if r["stress_rel"] is not None else "–"
        lines.append(f"| {r['method']} | {r['steps']} | {r['train_s']:.1f} | "
                     f"{r['ratio_to_fem']:.0f} | {r['rel_l2']:.2%} | {stress} |")
    lines += ["", "| level | size | dofs | steps/s | coarse-to-fine steps |",
              "|---|---|---|---|---|"]
    for i, lv in enumerate(doc["levels"]):
        lines.append(f"| {i} | {lv['size']} | {lv['dofs']} | {lv['steps_per_s']:.1f} | "
                     f"{lv['steps']} |")
    (out.parent / (out.name + ".md")).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
