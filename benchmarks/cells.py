"""Running one benchmark cell (problem × method) and the worker process that runs them.

Each problem's cells run in one worker process, ``python -m benchmarks.cells worker``
(under ``mpiexec -n N`` for the scaling cells), started by :mod:`benchmarks.harness`. A
network cell trains through :class:`coupling.runs.network.Trainer` and is measured by
:mod:`benchmarks.measure`; the ``deepxde`` cell is the external peer
(:mod:`benchmarks.peers`); the ``clif`` cell trains and rolls out PISNN's conservative
solver. Network cells with an FE reference also record the off-node errors (vs FEM at
quadrature points inside every cell, :mod:`coupling.measure`) of their final network.
Each cell appends one JSON line (its record) to the worker's output file; a cell
that raises is recorded as ``failed`` with the message and the grid goes on. A 1-rank
worker of a steady FE problem also appends the FEM solve of the problem's mesh, timed and
priced per answer (:func:`benchmarks.rivals.grid_fem`): the rival beside the cells.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import measure, peers
from .circuit import run_cell_circuit
from .grid import CONVERSION_T, METHODS, PROBLEMS, TARGETS, NotApplicable, Problem, method_config
from .rivals import grid_fem


def _autograd_batch(trainer, problem: Problem) -> int | None:
    """Steady autograd cells draw as many quadrature points per step as the mesh has
    nodes (the points every other method uses per step); the global batch, or None."""
    if trainer.cfg.residual.kind != "autograd" or problem.space_time:
        return None
    trainer.cfg.training.batch = int(trainer.disc.n_owned)  # per rank, read every step
    return int(trainer.comm.allreduce(trainer.disc.n_owned))


def run_cell(problem: Problem, method: str, quick: bool, workdir: Path, comm,
             steps: int | None = None) -> dict:
    """Train and measure one problem × method cell (collective); a record for the table."""
    record = {"problem": problem.name, "number": problem.number, "method": method,
              "label": METHODS[method].label, "ranks": comm.size, "status": "ok",
              "reference": problem.reference}
    try:
        doc = method_config(problem, method, quick, steps)
    except NotApplicable as exc:
        return {**record, "status": "n/a", "reason": str(exc)}
    if method == "deepxde":
        return {**record, **peers.run_deepxde(problem, doc, workdir, comm)}
    if method == "clif":
        return {**record, **run_clif(doc, workdir / problem.name / f"clif-n{comm.size}", comm)}
    if method == "circuit":
        return {**record, **run_cell_circuit(doc, comm)}
    return {**record, **_run_network(problem, method, doc, workdir, comm)}


def _run_network(problem: Problem, method: str, doc: dict, workdir: Path, comm) -> dict:
    """Train a coordinate network on the cell's config and measure it (collective)."""
    import torch  # deferred: loads torch

    from coupling.config import parse_run_config  # deferred: loads DOLFINx, torch
    from coupling.runs.network import Trainer  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.training.parallel import set_threads_per_rank  # deferred: loads DOLFINx, torch

    set_threads_per_rank(comm)
    run_dir = workdir / problem.name / f"{method}-n{comm.size}"
    measure.reset_peak_memory()
    t0 = time.perf_counter()
    cfg = parse_run_config(doc)
    trainer = Trainer(cfg, run_dir, comm, reference_cache=workdir / problem.name / "reference")
    trainer.setup()
    batch = _autograd_batch(trainer, problem)
    setup_s = time.perf_counter() - t0
    result = trainer.train()
    m = trainer.measure()
    records = measure.read_metrics(run_dir) if comm.rank == 0 else []
    net = trainer.net
    record = {
        "rel_l2": m["rel_l2"], "train_s": result.wall_s, "setup_s": setup_s,
        "steps": result.step, "epochs_per_s": result.step / result.wall_s,
        "activity": m.get("activity"), "energy_ratio": 1.0 if net.neuron == "ann" else None,
        "params": sum(p.numel() for p in net.parameters()), "widths": net.widths,
        "points": int(comm.allreduce(int(trainer.disc.weights.shape[0]))),
        "residual": cfg.residual.kind, "boundary": cfg.boundary.mode, "batch": batch,
        "lift_rel_l2": m.get("lift_rel_l2"),  # the boundary lift alone (N = 0), at the nodes
        "history": measure.history(records),
    }
    if net.neuron == "vsn":
        rep = measure.energy(trainer)
        record["energy_ratio"] = rep.ratio
        record["energy_ratio_compute"] = rep.to_dict()["compute_only"]["ratio"]
        record["energy_pj"] = {"ann": rep.ann_pj, "snn": rep.snn_pj}
    model = net
    if method == "ann2snn":
        conv, snn = measure.conversion(trainer, comm)
        at = conv[CONVERSION_T]
        record.update({"ann_rel_l2": m["rel_l2"], "rel_l2": at["rel_l2"],
                       "activity": at["activity"], "energy_ratio": at["energy_ratio"],
                       "conversion_T": CONVERSION_T,
                       "conversion": {str(t): v for t, v in conv.items()}})
        model = measure.RateCoded(snn, CONVERSION_T)
        # the training history is the ANN's, not the converted network's
        record["time_to_note"] = "of the ReLU ANN before conversion"
    field_of = getattr(trainer.disc, "field", None)
    if cfg.problem.type == "elasticity" and field_of is not None:
        with torch.no_grad():
            record.update(measure.elasticity_extras(trainer, field_of(model)))
    if method != "ann2snn" and m.get("offnode"):  # not of the converted network: left out
        record["offnode"] = offnode_record(m)
    record["time_to"] = _time_to(records, comm)
    mem = comm.allgather(measure.peak_memory_mb())
    return {**record, "peak_mem_mb": max(mem), "peak_mem_mb_per_rank": mem}


#: the off-node measures (coupling.measure) a network cell records, as the tables show them
OFFNODE_KEYS = ("rel_l2", "boundary_cells", "interior_cells", "interpolant_rel_l2",
                "max_of_range", "max_abs", "lift_rel_l2")


def offnode_record(m: dict) -> dict:
    """The off-node errors of a final measure (vs FEM at quadrature points inside the cells)
    beside the nodal error: the raw network's, its interpolant's, the worst deviation."""
    o = m["offnode"]
    return {"nodal_rel_l2": m["rel_l2"], **{k: o.get(k) for k in OFFNODE_KEYS}}


def _time_to(records: list[dict], comm) -> dict:
    """Wall time to each target (rank 0 holds the records; None elsewhere)."""
    return {f"{t:g}": (measure.time_to(records, t) if comm.rank == 0 else None)
            for t in TARGETS}


def run_clif(doc: dict, run_dir: Path, comm) -> dict:
    """Train and roll out one C-LIF cell; its error, drift, spikes and energy (collective)."""
    from coupling.config import parse_clif_config  # deferred: loads DOLFINx, torch
    from coupling.residuals.cfq import ROLLOUT  # deferred: loads DOLFINx, torch
    from coupling.runs.clif import train_clif  # deferred: loads DOLFINx, torch, Gmsh, SciPy

    measure.reset_peak_memory()
    t0 = time.perf_counter()
    result = train_clif(parse_clif_config(doc), run_dir, comm, resume=False)
    total = time.perf_counter() - t0
    ev = json.loads((run_dir / ROLLOUT).read_text())["summary"] if comm.rank == 0 else None
    ev = comm.bcast(ev, root=0)
    records = measure.read_metrics(run_dir) if comm.rank == 0 else []
    mem = comm.allgather(measure.peak_memory_mb())
    spikes, energy = ev["spikes_per_step"], ev["energy"]
    return {
        "rel_l2": ev["rel_l2"], "rel_l2_max": ev["rel_l2_max"], "steps": result.step,
        "train_s": result.wall_s, "setup_s": total - result.wall_s,
        "epochs_per_s": result.step / result.wall_s,
        # activity of a C-LIF solver: interface neurons that fire, per rollout step
        "activity": {"mean": ev["activity"], "layers": {"interfaces": ev["activity"]}},
        "energy_ratio": energy["ratio"], "energy_baseline": "float FV update, same flux net",
        "energy_pj": {"float_fv": energy["float_fv_pj"], "snn": energy["spiking_pj"]},
        "mass_drift": ev["mass_drift"], "mass_drift_max": ev["mass_drift_max"],
        "total_quanta": ev["total_quanta"], "boundary_quanta": ev["boundary_quanta"],
        "source_quanta": ev["source_quanta"], "spikes_per_step": spikes,
        "rollout_steps": ev["rollout_steps"], "t_end": ev["t_end"],
        "steady": doc["problem"]["type"] == "poisson",  # rolled out as a relaxation
        "residual": "cfq", "boundary": "rollout", "history": measure.history(records),
        "time_to": _time_to(records, comm),
        "time_to_note": "rollout error, logged at the end (clif.evaluate_every = 0)",
        "peak_mem_mb": max(mem), "peak_mem_mb_per_rank": mem,
    }


def fem_rival(problem: Problem, quick: bool, comm) -> dict:
    """The FEM rival record of `problem` (collective); a failure is a record too."""

    try:
        return grid_fem(problem, quick, comm)
    except Exception as exc:  # the cells' records stand without it
        return {"rival": "fem", "problem": problem.name, "status": "failed",
                "reason": " ".join(f"{type(exc).__name__}: {exc}".split())[:500]}


def _append(path: str, rec: dict, comm) -> None:
    if comm.rank == 0:
        with open(path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


def worker(argv: list[str]) -> int:
    """`python -m benchmarks.cells worker`: run cells of one problem, append JSON lines."""
    p = argparse.ArgumentParser(prog="benchmarks.cells worker")
    p.add_argument("--problem", required=True)
    p.add_argument("--methods", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int)
    a = p.parse_args(argv)
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_WORLD
    problem = PROBLEMS[a.problem]
    for method in a.methods.split(","):
        try:
            rec = run_cell(problem, method, a.quick, Path(a.workdir), comm, a.steps)
        except Exception as exc:  # a failing cell is a result too; the grid goes on
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            rec = {"problem": problem.name, "number": problem.number, "method": method,
                   "label": METHODS[method].label, "ranks": comm.size, "status": "failed",
                   "reason": msg}
        _append(a.out, rec, comm)
        if comm.rank == 0:
            err = f" rel_l2 {rec['rel_l2']:.3%}" if rec.get("rel_l2") is not None else ""
            print(f"bench: {problem.name} / {method} [{comm.size} rank(s)]: {rec['status']}"
                  f"{err} {rec.get('reason', '')}", file=sys.stderr, flush=True)
    if comm.size == 1 and problem.has_fem_rival:
        rec = fem_rival(problem, a.quick, comm)
        _append(a.out, rec, comm)
        if comm.rank == 0:
            print(f"bench: {problem.name} / FEM solve (rival): {rec['status']} "
                  f"{rec.get('reason', '')}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker(sys.argv[2:]))
    sys.exit("usage: python -m benchmarks.cells worker ... (use `neurofem bench`)")
