"""Training cost against the FEM solve it learns from, side by side in one run.

    python -m benchmarks.training_cost examples/demo-rve-elasticity.toml \\
        --variant full --variant compile --variant batch=0.1 --variant compile,batch=0.1 \\
        --steps 6000 --out benchmarks/results/training-cost-demo

For the config's mesh and problem it times the DOLFINx solve, then trains the config's
network once per variant (``full``: the config as is; ``compile``: torch.compile;
``batch=p``: element-sampled Galerkin with a fraction p of the cells per step;
``steps=N``, ``lr=x``, ``device=cuda``, ``optimizer=preconditioned`` (function-space steps
preconditioned by GAMG: :mod:`coupling.training.preconditioned`; ``every=N``,
``cycles=N`` its settings; with ``batch=p`` its regression's node batches) and combinations
joined by commas; ``full`` keeps the
config's own ``training.batch``) and records the training wall time, its ratio to the FEM
solve, steps per second, the errors vs FEM and the peak resident memory (max over ranks,
setup included).
Writes OUT.json and OUT.md with the machine load (`uptime`) and the command.
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
from benchmarks.measure import peak_memory_mb
from fem.flops import best_time


def _variant(text: str, base_steps: int, base_batch: int | float = 0) -> dict:
    """'compile,batch=0.1,steps=3000' → settings (defaults: the config's)."""
    out = {"name": text, "compile": False, "batch": base_batch, "steps": base_steps, "lr": None,
           "device": "cpu", "optimizer": "adam"}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key == "compile":
            out["compile"] = True
        elif key in ("batch", "lr"):
            out[key] = float(value) if "." in value or "e" in value else int(value)
        elif key == "steps":
            out["steps"] = int(value)
        elif key in ("device", "optimizer"):
            out[key] = value
        elif key in ("every", "cycles"):  # the preconditioned steps' settings
            out.setdefault("table", {})[key] = int(value)
        elif key != "full":
            raise SystemExit(f"training_cost: unknown variant part {part!r}")
    if "table" in out:
        out["optimizer"] = {"kind": out["optimizer"], **out.pop("table")}
    return out


def _train(trainer, v: dict, comm) -> dict:
    """Train a fresh copy of the config's network with variant `v`; time and errors."""
    import torch  # deferred: loads torch

    t = trainer.cfg.training
    torch.manual_seed(t.seed)
    same = v["batch"] == (t.batch if trainer.cfg.residual.kind == "galerkin" else 0)
    disc = (trainer.disc if same else  # the config's own batching: its discretisation
            coupling.discretise(trainer.problem, trainer.cfg.residual,
                                boundary=trainer.cfg.boundary.mode, dtype=trainer.dtype,
                                reference=trainer.ref, batch=v["batch"], seed=t.seed))
    net = trainer._network()
    disc.offnode = False  # the time is the training's: no off-node probe passes inside fit
    comm.barrier()
    t0 = time.perf_counter()
    result = coupling.fit(net, disc, steps=v["steps"], lr=v["lr"] or t.lr, schedule=t.schedule,
                          gamma=t.gamma, step_size=t.step_size, batch=v["batch"],
                          log_every=max(v["steps"], 1), compile=v["compile"],
                          device=v["device"], comm=comm, optimizer=v["optimizer"])
    wall = time.perf_counter() - t0
    u = disc.to_function(net.cpu())

    errors = validation.compare(trainer.problem, u, reference=trainer.ref.u).numbers["errors"]
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    peak = comm.allreduce(peak_memory_mb(), op=MPI.MAX)  # since the start: setup included
    return {**v, "train_s": wall, "steps_per_s": v["steps"] / wall, "peak_mib": peak,
            "rel_l2": errors["l2"]["relative"],
            "stress_rel": errors.get("stress", {}).get("relative"),
            "activity": result.measures.get("activity", {}).get("mean")}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write OUT.json / OUT.md (rank 0)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training_cost",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("config")
    parser.add_argument("--variant", action="append", default=None)
    parser.add_argument("--steps", type=int, help="default steps (else the config's)")
    parser.add_argument("--out", required=True, help="output path without extension")
    args = parser.parse_args(argv)
    from coupling.config import load_run_config  # deferred: loads DOLFINx, torch
    from coupling.runs.network import Trainer  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.training.parallel import set_threads_per_rank  # deferred: loads DOLFINx, torch
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    set_threads_per_rank(comm)
    cfg = load_run_config(args.config)

    scratch = comm.bcast(tempfile.mkdtemp(prefix="training-cost-") if comm.rank == 0 else None)
    trainer = Trainer(cfg, Path(scratch), comm)  # its reference cache: gone at the end
    t0 = time.perf_counter()
    trainer.setup()
    setup = time.perf_counter() - t0
    fem_s = best_time(trainer.problem.solve, 3)  # assembly + factorisation + solve
    steps = args.steps or cfg.training.steps
    batch = cfg.training.batch if cfg.residual.kind == "galerkin" else 0
    rows = [_train(trainer, _variant(v, steps, batch), comm) for v in (args.variant or ["full"])]
    for r in rows:
        r["ratio_to_fem"] = r["train_s"] / fem_s
    if comm.rank == 0:
        _write(args, rows, fem_s, setup, trainer, comm.size)
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _write(args, rows: list[dict], fem_s: float, setup: float, trainer, ranks: int) -> None:
    import torch  # deferred: loads torch

    dofs = int(trainer.problem.V.dofmap.index_map.size_global
               * trainer.problem.V.dofmap.index_map_bs)
    load = os.popen("uptime").read().strip()
    command = f"mpiexec -n {ranks} " if ranks > 1 else ""
    command += "python -m benchmarks.training_cost " + shlex.join(sys.argv[1:])
    doc = {"date": date.today().isoformat(), "command": command, "uptime": load,
           "ranks": ranks, "threads": torch.get_num_threads(), "dofs": dofs,
           "fem_solve_s": fem_s, "setup_s": setup, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    lines = [f"# Training cost vs FEM: {args.config}", "", f"`{command}`", "",
             f"{doc['date']}, {ranks} rank(s) × {doc['threads']} thread(s), {dofs} dofs; "
             f"load: {load}", "", f"FEM solve (best of 3): {fem_s:.3f} s; setup {setup:.1f} s",
             "", "| variant | steps | train s | × FEM | steps/s | rel. L2 | stress | activity "
             "| peak MiB/rank |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        stress = f"{r['stress_rel']:.2%}" if r["stress_rel"] is not None else "–"
        act = f"{r['activity']:.0%}" if r["activity"] is not None else "–"
        lines.append(f"| {r['name']} | {r['steps']} | {r['train_s']:.1f} | "
                     f"{r['ratio_to_fem']:.0f} | {r['steps_per_s']:.1f} | {r['rel_l2']:.2%} | "
                     f"{stress} | {act} | {r.get('peak_mib', float('nan')):.0f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
