"""Preconditioned training steps against Adam on the bracket, beside the FEM solves.

    python -m benchmarks.preconditioned --out benchmarks/results/bracket-preconditioned

The mesh, problem and network of ``examples/bracket-bending.toml``: the built-in
``bracket`` (L-shaped plate with two bolt holes and a filleted inner corner) of steel,
clamped on the walls of its bolt holes and bent by a 10 MPa traction on the top of its
upright, P2 elements (``--degree 1`` for P1). The example's network (a VSN) and its equal
ANN each train for the same wall-time budget with the example's learning rate (constant:
the budget is in seconds) and the output scale chosen from the problem
(:func:`coupling.auto_output_scale`), once with Adam on the Galerkin energy and once with
preconditioned steps (``optimizer = "preconditioned"``, its defaults). A shorter budget
measures the options: the demo's energy-saving design (3 × 96 VSNs, T_s = 1, hat encoder),
3 CG cycles per correction instead of 10, Jacobi instead of GAMG, an energy-norm misfit
beside the L2 one, and Adam with the former default output scale 1. Beside them the
rivals a user would pick: the FEM solve by conjugate gradients + GAMG with the rigid-body
near-nullspace, and the direct (MUMPS LU) solve, each timed with assembly (best of 3).
Writes OUT.json and OUT.md with the command and the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

import coupling
import spiking
import validation
from benchmarks.measure import peak_memory_mb
from coupling.config import load_run_config
from coupling.config.optimizer import optimizer_spec
from coupling.training.parallel import set_threads_per_rank
from fem.problems import build_problem
from fem.solvers import LinearSolver, SolverSettings
from meshes.fenics import MPI, dolfinx

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "bracket-bending.toml"
# the demo's energy-saving design (examples/demo-rve-elasticity.toml), its scale from the problem
DEMO = {"neuron": "vsn", "hidden": [96, 96, 96], "activation": "tanh", "num_steps": 1,
        "threshold": 0.005, "surrogate": "arctan", "encoder": {"kind": "hat", "levels": 32}}
OPTIONS = [("preconditioned, the demo's VSN design (hat encoder, T_s = 1)", "demo",
            "preconditioned"),
           ("preconditioned, 3 CG cycles per correction", "example",
            {"kind": "preconditioned", "cycles": 3}),
           ("preconditioned, Jacobi instead of GAMG", "example",
            {"kind": "preconditioned", "preconditioner": "jacobi"}),
           ("preconditioned, energy_weight 0.01 (energy-norm misfit too)", "example",
            {"kind": "preconditioned", "energy_weight": 0.01}),
           ("adam, output scale 1 (the former default)", "example", "adam-unscaled")]
ROWS = ("example:adam", "example:preconditioned", "ann:adam", "ann:preconditioned")
NAMES = {"example": "the example's VSN", "ann": "its equal ANN", "demo": "the demo's VSN"}


FEM_LABELS = {"lu": "direct (MUMPS LU)",
              "cg": "CG + GAMG, rigid-body near-nullspace (rtol 1e-8)"}


class _Budget(Exception):
    """The wall-time budget is spent (raised by :func:`_clock`'s callback)."""


def _clock(budget: float, curve: list, stop_at: float = 0.0, done: dict | None = None):
    """A callback that records the error curve and stops the run after `budget` seconds
    (rank 0's clock decides for all ranks), or once a logged error is ≤ `stop_at`."""

    done = {} if done is None else done

    class Clock(coupling.Callback):
        def on_step(self, state, values):
            done["steps"] = state.step  # the steps taken, logged or not
            if state.comm.bcast(state.wall_s > budget if state.comm.rank == 0 else None):
                raise _Budget

        def on_log(self, state, record):
            curve.append({"step": record["step"], "wall_s": record["wall_s"],
                          "rel_l2": record["rel_l2"]})
            if record["rel_l2"] <= stop_at:  # the same logged number on every rank
                raise _Budget

    return Clock()


def _network(cfg, disc, design: str, scale):
    """The example's network, its equal ANN or the demo's design, with output `scale`."""
    table = DEMO if design == "demo" else cfg.network.model_dump()
    lo, hi = disc.bounds
    net_cfg = spiking.MLPConfig(**{**table, "in_dim": disc.in_dim, "out_dim": disc.block_size,
                                   "bounds": [lo, hi], "output_scale": scale, "seed": 0})
    net = spiking.MLP.from_config(net_cfg)
    return spiking.equal_shape_ann(net) if design == "ann" else net


def _train(cfg, disc, ref, design: str, optimizer, budget: float, scale, log_every: int,
           stop_at: float = 0.0) -> dict:
    """Train a fresh network for `budget` seconds; its errors vs FEM and its curve."""
    torch.manual_seed(0)
    unscaled = optimizer == "adam-unscaled"
    net = _network(cfg, disc, design, [1.0] * disc.block_size if unscaled else scale)
    curve: list[dict] = []
    done = {"steps": 0}
    kind = optimizer if isinstance(optimizer, str) else optimizer["kind"]
    t0 = time.perf_counter()
    try:
        coupling.fit(net, disc, steps=10**7, lr=cfg.training.lr, log_every=log_every,
                     batch=cfg.training.batch if kind == "preconditioned" else 0,
                     handle_signals=False, optimizer="adam" if unscaled else optimizer,
                     callbacks=[_clock(budget, curve, stop_at, done)])
    except _Budget:
        pass
    wall = time.perf_counter() - t0
    e = validation.compare(disc.problem, disc.to_function(net),
                           reference=ref.u).numbers["errors"]
    first = {f"to_{p}": next((c["wall_s"] for c in curve if c["rel_l2"] <= p / 100), None)
             for p in (5, 1)}
    return {"design": design, "batch": cfg.training.batch if kind == "preconditioned" else 0,
            "optimizer": kind, "settings": optimizer, "train_s": wall,
            "peak_mib": disc.comm.allreduce(peak_memory_mb(), op=MPI.MAX),
            "steps": done["steps"], "rel_l2": e["l2"]["relative"],
            "stress_rel": e.get("stress", {}).get("relative"),
            "energy_rel": e.get("energy", {}).get("relative"), **first, "curve": curve}


def _fem(problem, method: str, repeat: int = 3) -> dict:
    """Best of `repeat` solves (assembly, preconditioner or factorisation, solve)."""
    best, info, u = float("inf"), {}, None
    for _ in range(repeat):
        u = dolfinx.fem.Function(problem.V)
        t0 = time.perf_counter()
        solver = LinearSolver(problem.stiffness, problem.load, problem.bcs, u,
                              SolverSettings(method=method, rtol=1e-8), near_nullspace=True)
        solver.solve()
        seconds = time.perf_counter() - t0
        if seconds < best:
            best, info = seconds, solver.info()
    return {"method": method, "label": FEM_LABELS[method], "seconds": best,
            "iterations": info["iterations"], "u": u}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.preconditioned",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("--config", default=str(CONFIG), help="the run config (mesh, problem, "
                        "network, learning rate)")
    parser.add_argument("--size", type=float, help="mesh size (default: the config's)")
    parser.add_argument("--degree", type=int, choices=(1, 2), help="default: the config's")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--options-budget", type=float, default=0.0,
                        help="seconds per option run (0: skip the options)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--fem", default="lu,cg", help="the FEM rivals, joined by commas: lu "
                        "(MUMPS), cg (CG + GAMG); the first is the ratios' reference")
    parser.add_argument("--repeat", type=int, default=3, help="FEM solves timed (best of)")
    parser.add_argument("--rows", default=",".join(ROWS), help="the runs, DESIGN:OPTIMIZER "
                        "joined by commas (designs: example, ann, demo; optimizers: adam, "
                        "preconditioned)")
    parser.add_argument("--every", type=int, help="steps between corrections (default: "
                        "training.optimizer's)")
    parser.add_argument("--batch", type=float, help="the preconditioned rows' node batch (a "
                        "fraction of the nodes; default: training.batch); Adam rows train on "
                        "the whole energy")
    parser.add_argument("--cycles", type=int, help="CG cycles per correction (default: "
                        "training.optimizer's)")
    parser.add_argument("--stop-at", type=float, default=0.0, help="end a run once its "
                        "logged displacement error is at most this (relative, e.g. 0.01)")
    parser.add_argument("--out", required=True, help="output path without extension")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write OUT.json / OUT.md (rank 0)."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    cfg = load_run_config(args.config)
    if args.size:
        cfg.mesh = cfg.mesh.model_copy(update={"size": args.size})
    if args.batch is not None:
        cfg.training = cfg.training.model_copy(update={"batch": args.batch})
    if args.degree:
        cfg.problem = cfg.problem.model_copy(update={"degree": args.degree})
    comm = MPI.COMM_WORLD
    set_threads_per_rank(comm)
    torch.set_default_dtype(torch.float32)  # the example's training dtype
    problem = build_problem(cfg.mesh.build(comm), cfg.problem)
    fem = [_fem(problem, method, args.repeat) for method in args.fem.split(",")]
    _differences(fem, comm)
    ref = problem.solve()
    disc = coupling.discretise(problem, reference=ref)
    disc.offnode = False  # nodal errors in the curves: no off-node probe inside the budget
    t0 = time.perf_counter()
    scale = coupling.auto_output_scale(disc)
    scale_s = time.perf_counter() - t0
    rows = [_train(cfg, disc, ref, design, _optimizer(cfg, opt, args), args.budget, scale,
                   args.log_every, args.stop_at)
            for design, opt in (row.split(":") for row in args.rows.split(","))]
    options = [{**_train(cfg, disc, ref, design, opt, args.options_budget, scale,
                         args.log_every), "name": name}
               for name, design, opt in (OPTIONS if args.options_budget > 0 else [])]
    facts = {"degree": cfg.problem.degree, "lr": cfg.training.lr, "output_scale": scale,
             "scale_s": scale_s, "size": cfg.mesh.size if hasattr(cfg.mesh, "size") else None,
             "stop_at": args.stop_at,
             "max_abs_u": _max_abs(ref.u, comm),
             "preconditioners": [p.info() for p in disc.__dict__["_preconditioners"].values()]}
    if comm.rank == 0:
        V = problem.V
        ranks = comm.size
        command = ((f"mpiexec -n {ranks} " if ranks > 1 else "")
                   + "python -m benchmarks.preconditioned " + shlex.join(args.argv))
        doc = {"date": date.today().isoformat(), "command": command,
               "uptime": os.popen("uptime").read().strip(), "ranks": ranks,
               "threads": torch.get_num_threads(),
               "dofs": int(V.dofmap.index_map.size_global * V.dofmap.bs),
               "config": Path(args.config).name, "budget_s": args.budget,
               "options_budget_s": args.options_budget,
               "fem": [{k: v for k, v in f.items() if k != "u"} for f in fem], **facts,
               "rows": rows, "options": options}
        _write(Path(args.out), doc)
    return 0


def _optimizer(cfg, name: str, args) -> str | dict:
    """A row's optimizer: "adam", or the preconditioned table of the config with the
    command line's --every / --cycles."""
    if name != "preconditioned":
        return name
    table = cfg.training.optimizer
    spec = optimizer_spec(table if hasattr(table, "model_dump") else name).model_dump()
    spec["kind"] = "preconditioned"
    spec.update({k: getattr(args, k) for k in ("every", "cycles") if getattr(args, k)})
    return spec


def _differences(fem: list[dict], comm) -> None:
    """Each solve's ‖u − u_first‖ / ‖u_first‖ over the owned dofs of all ranks (``rel_diff``)."""
    first = fem[0]["u"]
    n = first.function_space.dofmap.index_map.size_local * first.function_space.dofmap.bs
    r = first.x.array[:n]
    for f in fem:
        d = f["u"].x.array[:n] - r
        f["rel_diff"] = float(np.sqrt(comm.allreduce(float(d @ d)) / comm.allreduce(float(r @ r))))


def _max_abs(u, comm) -> list[float]:
    """max |u_c| per component over all ranks."""
    bs = u.function_space.dofmap.bs
    local = np.abs(u.x.array).reshape(-1, bs).max(axis=0)
    return [comm.allreduce(float(v), op=MPI.MAX) for v in local]


def _cell(seconds, fem: list[dict]) -> str:
    """A time and its ratios to each FEM solve (in the table's order)."""
    if seconds is None:
        return "not reached"
    return f"{seconds:.1f} s (" + " / ".join(f"{seconds / f['seconds']:.0f}×" for f in fem) + ")"


def _target(rows: list[dict], fem: list[dict], degree: int) -> str:
    """The verdict on issue 29's bracket target for the example network's preconditioned run."""
    r = next(r for r in rows if r["design"] == "example" and r["optimizer"] == "preconditioned")
    direct, cg = (next(f["seconds"] for f in fem if f["method"] == m) for m in ("lu", "cg"))
    head = ("- Target ≤ 1% displacement vs FEM in ≤ 60× the FEM solve (issue 29; the "
            f"example's network, its scale from the problem, P{degree}): ")
    stress = f"{r['stress_rel']:.0%}" if r["stress_rel"] is not None else "n/a"
    if r["to_1"] is None and r["rel_l2"] <= 0.01:  # below 1% first at the final measure
        verdict = "met" if r["train_s"] <= 60 * direct else "missed"
        return head + (f"{verdict}: {r['rel_l2']:.2%} after {r['train_s']:.0f} s = "
                       f"{r['train_s'] / direct:.0f}× the direct solve "
                       f"({r['train_s'] / cg:.0f}× CG + GAMG), but the stress error is "
                       f"{stress}.")
    if r["to_1"] is None:
        return head + (f"missed: {r['rel_l2']:.2%} after {r['train_s']:.0f} s "
                       f"({r['train_s'] / direct:.0f}× the direct solve); stress error {stress}.")
    verdict = "met" if r["to_1"] <= 60 * direct else "missed"
    return head + (f"{verdict}: 1% at {r['to_1']:.1f} s = {r['to_1'] / direct:.0f}× the direct "
                   f"solve ({r['to_1'] / cg:.0f}× CG + GAMG); {r['rel_l2']:.2%} at the end of "
                   f"the budget, but the stress error is {stress}.")


def _bracket(doc: dict) -> bool:
    return "bracket" in doc["config"]


def _title(doc: dict) -> str:
    return "Bracket in bending" if _bracket(doc) else f"`{doc['config']}`"


def _size(doc: dict) -> str:
    return f", mesh size {doc['size']:g}" if doc.get("size") else ""


def _opt(r: dict) -> str:
    """The optimizer and its non-default correction settings."""
    table = r.get("settings")
    if not isinstance(table, dict):
        return r["optimizer"]
    batch = f", {r['batch']:.0%} node batches" if r.get("batch") else ""
    return f"{r['optimizer']} (every {table['every']}, {table['cycles']} cycles{batch})"


def _its(f: dict) -> str:
    return f"{f['iterations']} it." if f["method"] == "cg" else "–"


def _scale_target(doc: dict) -> str:
    """Issue 29's large-RVE target for each run: ≤ 1% in ≤ 40 min, ≤ 8 GB per rank."""
    out = ["- Target ≤ 1% displacement vs FEM in ≤ 40 minutes of training, ≤ 8 GB per rank "
           f"(issue 29; {doc['dofs']} dofs, {doc['ranks']} rank(s)):"]
    for r in doc["rows"]:
        t = r["to_1"] if r["to_1"] is not None else (
            r["train_s"] if r["rel_l2"] <= 0.01 else None)
        ok = t is not None and t <= 2400 and r["peak_mib"] <= 8192
        reached = (f"1% at {t / 60:.1f} min" if t is not None else
                   f"{r['rel_l2']:.2%} after {r['train_s'] / 60:.1f} min")
        out.append(f"  {NAMES[r['design']]}, {_opt(r)}: {'met' if ok else 'missed'}: {reached}, "
                   f"peak {r['peak_mib'] / 1024:.1f} GiB per rank, stress error "
                   f"{r['stress_rel']:.0%}.")
    return "\n".join(out)


def _errors(r: dict) -> str:
    """steps | displacement | stress | energy-norm errors of a run, as table cells."""
    pct = [f"{r[k]:.2%}" if r.get(k) is not None else "–"
           for k in ("rel_l2", "stress_rel", "energy_rel")]
    return f"{r['steps']} | " + " | ".join(pct)


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.2g}" for v in values) + "]"


def _write(out: Path, doc: dict) -> None:
    """OUT.json (everything) and OUT.md (the tables and the verdict) of a run's record."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    fem, facts, deg = doc["fem"], doc, doc["degree"]
    lines = [
        f"# {_title(doc)}: preconditioned steps vs Adam, beside the FEM solves", "",
        f"`{doc['command']}`", "",
        f"{doc['date']}, {doc['ranks']} rank(s) × {doc['threads']} thread(s), {doc['dofs']} "
        f"dofs (P{deg}); load: {doc['uptime']}", "",
        f"The mesh, problem and network of `{doc['config']}` (P{deg}{_size(doc)})"
        + (": steel (E = 210 GPa, ν = 0.3) clamped on its bolt holes, 10 MPa horizontal "
           "traction on the top of the upright" if _bracket(doc) else "")
        + f". Output scale from the problem: {_fmt(facts['output_scale'])} "
        f"({facts['scale_s']:.1f} s; max |u| of FEM {_fmt(facts['max_abs_u'])}); learning "
        f"rate {facts['lr']:g}, constant; {doc['budget_s']:g} s of training per run"
        + (f", ended once the logged displacement error is ≤ {doc['stop_at']:.2%}"
           if doc.get("stop_at") else "") + ".", "",
        _target(doc["rows"], fem, deg) if _bracket(doc) else _scale_target(doc), "",
        "Times are training wall times (setup excluded) and their ratios to the direct / "
        "CG + GAMG solve; errors are relative (L2 displacement, stress, energy norm) vs the "
        "FEM solution on the same mesh and degree.", "",
        "| network | optimizer | steps | displacement | stress | energy norm "
        "| time to 5% | time to 1% | peak MiB/rank |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {NAMES[r['design']]} | {_opt(r)} | {_errors(r)} | "
              f"{_cell(r['to_5'], fem)} | {_cell(r['to_1'], fem)} | {r.get('peak_mib', 0):.0f} |"
              for r in doc["rows"]]
    lines += [f"| FEM: {f['label']} | – | {_its(f)} | "
              + ("reference | reference | reference" if i == 0 else
                 f"{f['rel_diff']:.1e} vs {fem[0]['method']} | – | –")
              + f" | {f['seconds']:.2f} s | {f['seconds']:.2f} s | – |"
              for i, f in enumerate(fem)] + [""]
    lines += [f"Preconditioner {c['kind']} ({cycles} cycle(s), {c['levels']} level(s)): "
              f"setup {c['setup_s']:.2f} s, {1e3 * t['apply_s'] / max(t['applies'], 1):.0f} ms "
              f"per correction over {t['applies']} corrections (all runs)."
              for c in facts["preconditioners"]
              for cycles, t in c.get("by_cycles", {c["cycles"]: c}).items() if t["applies"]]
    if doc["options"]:
        lines += ["", f"Options ({doc['options_budget_s']:g} s each):", "",
                  "| option | steps | displacement | stress | energy norm | time to 5% "
                  "| time to 1% |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {o['name']} | {_errors(o)} | {_cell(o['to_5'], fem)} | "
                  f"{_cell(o['to_1'], fem)} |" for o in doc["options"]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
