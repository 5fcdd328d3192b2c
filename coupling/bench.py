"""The benchmark grid of `neurofem bench`: NeuroPINNs' problems × methods, measured here.

Problems (one base config each in ``examples/``, its method being the VSN network the
problem is best trained with) and methods (overrides applied to that config, so every
method gets the same network shape, mesh, points and step budget):

========================  =================================================================
``ann-autograd``          vanilla PINN: tanh ANN, strong-form residual by autograd (soft BCs)
``ann-sp``                SP-PINN: tanh ANN, stochastic-projection derivatives
``vsn-sp``                NeuroPINN (Garg & Chakraborty, arXiv 2511.06081): VSN + SP
``vsn-galerkin``          ours: VSN on the FEM-backed Galerkin energy (steady problems)
``ann2snn``               ReLU ANN trained, then converted to an IF network
                          (Diehl et al. 2015; Rueckauer et al. 2017), rate-coded over T steps
``deepxde``               DeepXDE's vanilla PINN (PyTorch backend) on the same geometry
``clif``                  PISNN (Zhang & Wang, arXiv 2511.21784): the conservative spiking
                          solver, C-LIF interface neurons moving integer flux quanta
========================  =================================================================

The network methods share each problem's base config; ``clif`` is a different model (a
learned flux operator rolled out in time, not a coordinate network), so its cells run the
problem's own ``model = "clif"`` example: problem 2 (1D heat) and PISNN's 2D Laplace and
3D diffusion problems (7, 8), which only it runs.

A cell that a method cannot run is recorded as ``n/a`` with the reason; a cell whose
optional dependency is missing as ``skipped``. Each problem's cells run in one worker
process (``python -m coupling.bench worker``), the peak resident memory being reset per
cell (``/proc/self/clear_refs``); the strong-scaling cells run under ``mpiexec -n N``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = (0.05, 0.01)  # time-to-accuracy thresholds (relative L2)
CONVERSION_STEPS = (8, 32, 128)  # T of the ANN→SNN baseline; the table reports T = 32
CONVERSION_T = 32


class BenchError(Exception):
    """Bad `neurofem bench` input (one line, exit code 2)."""


class NotApplicable(Exception):
    """A method that cannot run a problem (the message says why)."""


@dataclass(frozen=True)
class Problem:
    """One benchmark problem: its base config and budgets."""

    name: str
    number: int
    title: str
    example: str
    reference: str  # what rel_l2 is measured against
    steps: int  # full-run Adam steps (every network method)
    overrides: dict = field(default_factory=dict)  # full-run changes to the example
    quick: dict = field(default_factory=dict)  # --quick changes (tiny mesh, few steps)
    methods: tuple[str, ...] = ()  # the cells of this problem (default: every network method)
    clif: str | None = None  # the `model = "clif"` example of the clif cell
    clif_quick: dict = field(default_factory=dict)  # --quick changes of the clif example

    @property
    def space_time(self) -> bool:
        return self.name in ("burgers1d", "heat1d")

    def base(self) -> dict:
        """The example config as a document."""
        from fem.config import load_toml

        return load_toml(EXAMPLES / self.example)

    def cells(self) -> tuple[str, ...]:
        """The methods benchmarked on this problem, in table order."""
        return self.methods or NETWORK_METHODS + (("clif",) if self.clif else ())


_QUICK_NET = {"hidden": [32, 32], "fourier_features": None}
_QUICK_CLIF = {"training": {"log_every": 10}}
_QUICK_ST = {"mesh": {"size": 0.05}, "problem": {"time": {"dt": 0.02},
                                                "output": {"points": 21, "times": 21}},
             "network": _QUICK_NET}

PROBLEMS: dict[str, Problem] = {p.name: p for p in (
    Problem("burgers1d", 1, "1D viscous Burgers (space-time)", "burgers1d-vsn-sp.toml",
            "FEM P2 (Newton, backward Euler) on the 61×61 (x, t) grid", 1500, {}, _QUICK_ST),
    Problem("heat1d", 2, "1D heat with source (space-time)", "heat1d-vsn-sp.toml",
            "FEM P2 (Crank–Nicolson) on the 61×61 (x, t) grid; analytic solution known "
            "(clif: the analytic solution, cell averages, trained on t ≤ 0.2, rolled out to 1)",
            1500, {}, _QUICK_ST, clif="heat1d-clif.toml", clif_quick=_QUICK_CLIF),
    Problem("poisson2d", 3, "2D Poisson, tanh layer (manufactured)", "bench-poisson2d-tanh.toml",
            "FEM P1 at the nodes (mesh size 0.04)", 2500, {},
            {"mesh": {"size": 0.2}, "network": _QUICK_NET}),
    Problem("lshape", 4, "2D L-shape Poisson (re-entrant corner)", "lshape-vsn-galerkin.toml",
            "FEM P1 at the nodes (mesh size 0.08, corner-refined)", 3000, {},
            {"mesh": {"size": 0.25}, "network": _QUICK_NET}),
    Problem("cube-spheres", 5, "3D Poisson, cube minus 4 spheres, two layers",
            "bench-cube-spheres.toml", "FEM P1 at the nodes (mesh size 0.1)", 1500, {},
            {"mesh": {"size": 0.3}, "network": _QUICK_NET}),
    Problem("rve", 6, "3D elastic RVE, 8 spherical inclusions (uniaxial strain)",
            "bench-rve-elasticity.toml", "FEM P1 displacement at the nodes (mesh size 0.12)",
            1500, {}, {"mesh": {"size": 0.3, "n": 2}, "network": _QUICK_NET}),
    Problem("laplace2d", 7, "2D Laplace, u = sin πx on the top edge (PISNN, steady)",
            "laplace2d-clif.toml", "exact sin(πx) sinh(πy)/sinh(π), cell averages; steady "
            "state by relaxation", 150, methods=("clif",), clif="laplace2d-clif.toml",
            clif_quick={**_QUICK_CLIF, "mesh": {"n": [16, 16]}}),
    Problem("diffusion3d", 8, "3D diffusion, cube minus 4 spheres (PISNN, transient)",
            "diffusion3d-clif.toml", "FEM P1 heat (Crank–Nicolson), cell averages, to t = 0.2",
            40, methods=("clif",), clif="diffusion3d-clif.toml",
            clif_quick={**_QUICK_CLIF, "mesh": {"size": 0.3}}),
)}


@dataclass(frozen=True)
class Method:
    """One training method: a label for the table and how it changes a base config."""

    name: str
    label: str
    neuron: str  # ann | vsn | if (converted)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ann-autograd", "ANN-PINN (autograd)", "ann"),
    Method("ann-sp", "SP-PINN (ANN + sp)", "ann"),
    Method("vsn-sp", "NeuroPINN (VSN + sp)", "vsn"),
    Method("vsn-galerkin", "VSN + galerkin (ours)", "vsn"),
    Method("ann2snn", "ANN→SNN conversion (IF, T=32)", "if"),
    Method("deepxde", "DeepXDE vanilla PINN", "ann"),
    Method("clif", "PISNN (C-LIF + CFQ)", "clif"),
)}
NETWORK_METHODS = tuple(m for m in METHODS if m != "clif")

_VSN_KEYS = ("num_steps", "threshold", "beta", "learn_beta", "learn_threshold", "surrogate",
             "slope", "reset", "detach_reset")


def merge(doc: dict, overrides: dict) -> dict:
    """A deep copy of `doc` with `overrides` merged in (a None value removes the key)."""
    out = copy.deepcopy(doc)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _ann_network(net: dict, activation: str) -> dict:
    out = {k: v for k, v in net.items() if k not in _VSN_KEYS}
    out.update(neuron="ann", activation=activation)
    return out


def _sp_residual(doc: dict) -> dict:
    """The base config's SP settings if it has them, else NeuroPINNs' mesh 1-ring."""
    res = doc.get("residual", {})
    if res.get("kind") == "sp":
        return dict(res)
    return {"kind": "sp", "neighbours": "mesh", "rings": 1, "order": 1}


QUICK_STEPS = 30


def method_config(problem: Problem, method: str, quick: bool = False,
                  steps: int | None = None) -> dict:
    """The run config of one cell (raises NotApplicable with the reason); `steps`
    overrides the problem's budget."""
    if method == "clif":
        return _clif_config(problem, quick, steps)
    if method not in problem.cells():
        raise NotApplicable(f"problem {problem.name} is a C-LIF (PISNN) problem: its reference "
                            "set-up exists as a model = \"clif\" example only")
    doc = merge(problem.base(), problem.overrides)
    budget = problem.steps
    if quick:
        doc = merge(doc, problem.quick)
        budget = QUICK_STEPS
    steps = steps or budget
    elastic = doc["problem"]["type"] == "elasticity"
    soft = {"mode": "soft", "weight": float(doc.get("boundary", {}).get("weight", 100.0))}
    net = doc["network"]
    if method == "ann-autograd":
        if elastic:
            raise NotApplicable("the trainer's autograd residual covers scalar PDEs only "
                                "(elasticity trains with galerkin)")
        doc["network"] = _ann_network(net, "tanh")
        doc["residual"] = {"kind": "autograd"}
        doc["boundary"] = soft
    elif method in ("ann-sp", "vsn-sp"):
        if elastic:
            raise NotApplicable("the trainer's sp residual is the scalar strong form; a strong-"
                                "form SP residual of piecewise elasticity needs interface "
                                "traction conditions (elasticity trains with galerkin)")
        if method == "ann-sp":
            doc["network"] = _ann_network(net, "tanh")
        doc["residual"] = _sp_residual(doc)
        doc["boundary"] = soft if problem.space_time else {"mode": "hard"}
    elif method == "vsn-galerkin":
        if problem.space_time:
            raise NotApplicable("the Galerkin energy needs a symmetric elliptic FE operator; "
                                "space-time heat/Burgers have none")
        doc["residual"] = {"kind": "galerkin"}
        doc["boundary"] = {"mode": "exact"}
    elif method == "ann2snn":
        doc["network"] = _ann_network(net, "relu")
        if problem.space_time:  # ReLU has no second derivative: autograd cannot train it
            doc["residual"] = _sp_residual(doc)
            doc["boundary"] = soft
        else:
            doc["residual"] = {"kind": "galerkin"}
            doc["boundary"] = {"mode": "exact"}
    elif method == "deepxde":
        if elastic:
            raise NotApplicable("a strong-form PINN of piecewise elasticity needs interface "
                                "traction conditions DeepXDE's vanilla PINN does not have")
        doc["network"] = _ann_network(net, "tanh")
        doc["residual"] = {"kind": "autograd"}
        doc["boundary"] = soft
    else:
        raise BenchError(f"--only: unknown method {method!r} (methods: {', '.join(METHODS)})")
    log_every = max(1, steps // 20)
    doc["training"] = merge(doc.get("training", {}), {
        "steps": steps, "lbfgs_steps": 0, "progress": False, "log_every": log_every,
        "checkpoint_every": steps, "keep_checkpoints": 1})
    return doc


def _clif_config(problem: Problem, quick: bool, steps: int | None) -> dict:
    """The clif cell's config: the problem's C-LIF example with the bench's budget."""
    from fem.config import load_toml

    if problem.clif is None:
        raise NotApplicable("the C-LIF solver (PISNN) here covers heat and Laplace on grids or "
                            "meshes; this problem has no clif example")
    doc = load_toml(EXAMPLES / problem.clif)
    if quick:
        doc = merge(doc, problem.clif_quick)
    budget = steps or (QUICK_STEPS if quick else int(doc.get("training", {}).get("steps", 300)))
    doc["training"] = merge(doc.get("training", {}), {
        "steps": budget, "progress": False, "checkpoint_every": budget, "keep_checkpoints": 1})
    return doc


# ---- measuring ---------------------------------------------------------------------
def reset_peak_memory() -> bool:
    """Reset this process's peak RSS (Linux ≥ 4.0); False where it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb() -> float:
    """Peak resident memory of this process since the last reset (MiB)."""
    try:
        text = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024.0
    except (OSError, AttributeError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_to(records: list[dict], target: float) -> float | None:
    """Wall time of the first logged step with rel_l2 ≤ target (None: not reached)."""
    for r in records:
        if r.get("rel_l2") is not None and r["rel_l2"] <= target:
            return float(r["wall_s"])
    return None


def _read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def _weighted_rel_l2(disc, u, comm) -> float:
    """√(Σ w (u − u_ref)² / Σ w u_ref²) over all ranks (the trainer's measure)."""
    import torch

    from .parallel import allreduce_scalars

    w, target = disc.weights.to(torch.float64), disc.target
    u = u.detach().to(torch.float64).reshape(-1)
    e, r = allreduce_scalars([float(torch.sum(w * (u - target) ** 2)),
                              float(torch.sum(w * target ** 2))], comm)
    return math.sqrt(e / r)


class _RateCoded:
    """The converted IF network as a plain callable x → u (T steps of rate coding)."""

    def __init__(self, snn, steps: int) -> None:
        self.snn, self.steps = snn, steps

    def __call__(self, x):
        return self.snn(x, self.steps)


def _points_of(disc):
    return disc.x_eval if hasattr(disc, "x_eval") else disc.x_nodes


def _conversion(trainer, comm):
    """Convert the trained ReLU ANN to IF neurons: (per-T error/activity/energy, the SNN)."""
    import torch

    import spiking
    from spiking.conversion import convert_relu_mlp
    from spiking.energy import count_energy

    from .parallel import allreduce_scalars

    net, disc = trainer.net, trainer.disc
    x = _points_of(disc)
    snn = convert_relu_mlp(net, x)
    fourier = None if net.fourier is None else (net.fourier.in_dim, net.fourier.B.shape[0])
    per_t = {}
    for T in CONVERSION_STEPS:
        mon = spiking.ActivityMonitor(snn)
        with torch.no_grad(), mon:
            u = disc.evaluate(_RateCoded(snn, T))
        layers = mon.layers()
        names = list(layers)
        sums = allreduce_scalars([v for n in names for v in (
            layers[n].spikes, layers[n].neuron_steps, layers[n].events, layers[n].points)], comm)
        act = {n: sums[4 * i] / max(sums[4 * i + 1], 1) for i, n in enumerate(names)}
        events = [sums[4 * i + 2] / max(sums[4 * i + 3], 1) for i in range(len(names))]
        rep = count_energy(net.widths, neuron="if", steps=T, events=events,
                           activity=list(act.values()), fourier=fourier)
        per_t[T] = {"rel_l2": _weighted_rel_l2(disc, u, comm),
                    "activity": {"mean": sum(sums[0::4]) / max(sum(sums[1::4]), 1),
                                 "layers": act},
                    "energy_ratio": rep.ratio}
    return per_t, snn


def _energy(trainer):
    """Energy report of a VSN network over the evaluation points (this rank's points)."""
    import torch

    import spiking

    mon = spiking.ActivityMonitor(trainer.net)
    with torch.no_grad(), mon:
        trainer.disc.evaluate(trainer.net)
    return spiking.energy_report(trainer.net, mon)


def young_modulus(u, problem, dmesh) -> float:
    """Apparent Young's modulus E = ∫σ_xx dx / ∫ε_xx dx of displacement u (collective).

    Under the uniaxial-strain set-up (u_x prescribed on x0/x1, rollers on y0/z0, free
    lateral faces y1/z1) the average lateral stresses vanish (average-stress theorem), so
    this is the RVE's apparent modulus along x; FEM and network are measured alike.
    """
    from meshes._dolfinx import ufl
    from validation.errors import integrate, strain, stress

    dx = ufl.Measure("dx", domain=dmesh.mesh, metadata={"quadrature_degree": 2})
    sxx = integrate(stress(u, problem.lmbda, problem.mu)[0, 0], dx, dmesh.comm)
    exx = integrate(strain(u)[0, 0], dx, dmesh.comm)
    return sxx / exx


def hs_young_bounds(materials: dict, dmesh) -> dict:
    """Hashin–Shtrikman bounds on E from the phases' (E, ν) and measured volume fractions."""
    from fem.problems import bulk_shear, hashin_shtrikman
    from meshes._dolfinx import ufl
    from validation.errors import integrate

    dxp = ufl.Measure("dx", domain=dmesh.mesh, subdomain_data=dmesh.cell_tags)
    vol = {n: integrate(ufl.as_ufl(1.0), dxp(tag), dmesh.comm)
           for n, tag in dmesh.cell_names.items()}
    names = [n for n in materials if n in vol]
    total = sum(vol[n] for n in names)
    K, G = zip(*(bulk_shear(*materials[n]) for n in names), strict=True)
    hs = hashin_shtrikman(list(K), list(G), [vol[n] / total for n in names])
    e = lambda k, g: 9 * k * g / (3 * k + g)  # noqa: E731
    return {"lower": float(e(hs["K"][0], hs["G"][0])), "upper": float(e(hs["K"][1], hs["G"][1])),
            "fractions": {n: vol[n] / total for n in names}}


def _elasticity_extras(trainer, coefficients) -> dict:
    """Stress / energy errors and the apparent Young's modulus of a displacement field."""
    from validation.errors import elasticity_errors
    from validation.fields import network_function, on_space

    problem, dmesh = trainer.disc.problem, trainer.dmesh
    V = problem.V
    u_net = network_function(coefficients, V, "u_network")
    u_ref = on_space(trainer.ref.u, V, "u_fem")
    errs = elasticity_errors(u_net, u_ref, problem.lmbda, problem.mu)
    return {"stress_rel": errs["stress"]["relative"], "energy_rel": errs["energy"]["relative"],
            "von_mises_rel": errs["von_mises"]["relative"],
            "young": {"network": young_modulus(u_net, problem, dmesh),
                      "fem": young_modulus(u_ref, problem, dmesh),
                      "hashin_shtrikman": hs_young_bounds(trainer.cfg.problem.materials, dmesh)}}


def _autograd_batch(trainer, problem: Problem) -> int | None:
    """Steady autograd cells draw as many quadrature points per step as the mesh has
    nodes (the points every other method uses per step); the global batch, or None."""
    if trainer.cfg.residual.kind != "autograd" or problem.space_time:
        return None
    trainer.cfg.training.batch = int(trainer.disc.n_owned)  # per rank, read every step
    return int(trainer.comm.allreduce(trainer.disc.n_owned))


# ---- one cell ----------------------------------------------------------------------
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
        from . import bench_peers

        return {**record, **bench_peers.run_deepxde(problem, doc, workdir, comm)}
    if method == "clif":
        return {**record, **_run_clif(doc, workdir / problem.name / f"clif-n{comm.size}", comm)}
    import torch

    from .config import parse_run_config
    from .parallel import set_threads_per_rank
    from .trainer import Trainer

    set_threads_per_rank(comm)
    run_dir = workdir / problem.name / f"{method}-n{comm.size}"
    reset_peak_memory()
    t0 = time.perf_counter()
    cfg = parse_run_config(doc)
    trainer = Trainer(cfg, run_dir, comm, reference_cache=workdir / problem.name / "reference")
    trainer.setup()
    batch = _autograd_batch(trainer, problem)
    setup_s = time.perf_counter() - t0
    result = trainer.train()
    m = trainer.measure()
    records = _read_metrics(run_dir) if comm.rank == 0 else []
    net = trainer.net
    record.update({
        "rel_l2": m["rel_l2"], "train_s": result.wall_s, "setup_s": setup_s,
        "steps": result.step, "epochs_per_s": result.step / result.wall_s,
        "activity": m.get("activity"), "energy_ratio": 1.0 if net.neuron == "ann" else None,
        "params": sum(p.numel() for p in net.parameters()), "widths": net.widths,
        "points": int(comm.allreduce(int(trainer.disc.weights.shape[0]))),
        "residual": cfg.residual.kind, "boundary": cfg.boundary.mode, "batch": batch,
        "history": [{"step": r["step"], "rel_l2": r.get("rel_l2"), "wall_s": r["wall_s"]}
                    for r in records],
    })
    if net.neuron == "vsn":
        rep = _energy(trainer)
        record["energy_ratio"] = rep.ratio
        record["energy_pj"] = {"ann": rep.ann_pj, "snn": rep.snn_pj}
    field_of = trainer.disc.field if hasattr(trainer.disc, "field") else None
    if method == "ann2snn":
        conv, snn = _conversion(trainer, comm)
        at = conv[CONVERSION_T]
        record.update({"ann_rel_l2": m["rel_l2"], "rel_l2": at["rel_l2"],
                       "activity": at["activity"], "energy_ratio": at["energy_ratio"],
                       "conversion_T": CONVERSION_T,
                       "conversion": {str(t): v for t, v in conv.items()}})
        model = _RateCoded(snn, CONVERSION_T)
    else:
        model = net
    if cfg.problem.type == "elasticity" and field_of is not None:
        with torch.no_grad():
            record.update(_elasticity_extras(trainer, field_of(model)))
    record["time_to"] = {f"{t:g}": (time_to(records, t) if comm.rank == 0 else None)
                         for t in TARGETS}
    if method == "ann2snn":  # the training history is the ANN's, not the converted network's
        record["time_to_note"] = "of the ReLU ANN before conversion"
    mem = comm.allgather(peak_memory_mb())
    record["peak_mem_mb"] = max(mem)
    record["peak_mem_mb_per_rank"] = mem
    return record


def _run_clif(doc: dict, run_dir: Path, comm) -> dict:
    """Train and roll out one C-LIF cell; its error, drift, spikes and energy (collective)."""
    from .clif import ROLLOUT, train_clif

    reset_peak_memory()
    t0 = time.perf_counter()
    result = train_clif(doc, run_dir, comm, resume=False)
    total = time.perf_counter() - t0
    ev = json.loads((run_dir / ROLLOUT).read_text())["summary"] if comm.rank == 0 else None
    ev = comm.bcast(ev, root=0)
    records = _read_metrics(run_dir) if comm.rank == 0 else []
    mem = comm.allgather(peak_memory_mb())
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
        "residual": "cfq", "boundary": "rollout",
        "history": [{"step": r["step"], "rel_l2": r.get("rel_l2"), "wall_s": r["wall_s"]}
                    for r in records],
        "time_to": {f"{t:g}": (time_to(records, t) if comm.rank == 0 else None) for t in TARGETS},
        "time_to_note": "rollout error, logged at the end (clif.evaluate_every = 0)",
        "peak_mem_mb": max(mem), "peak_mem_mb_per_rank": mem,
    }


# ---- the worker (one process, or one mpiexec job, per problem) ---------------------
def worker(argv: list[str]) -> int:
    """`python -m coupling.bench worker`: run cells of one problem, append JSON lines."""
    p = argparse.ArgumentParser(prog="coupling.bench worker")
    p.add_argument("--problem", required=True)
    p.add_argument("--methods", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int)
    a = p.parse_args(argv)
    from meshes._dolfinx import MPI

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
        if comm.rank == 0:
            with open(a.out, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            status = rec["status"]
            err = f" rel_l2 {rec['rel_l2']:.3%}" if rec.get("rel_l2") is not None else ""
            print(f"bench: {problem.name} / {method} [{comm.size} rank(s)]: {status}{err} "
                  f"{rec.get('reason', '')}", file=sys.stderr, flush=True)
    return 0


# ---- the driver --------------------------------------------------------------------
@dataclass
class Options:
    """What `neurofem bench` was asked to do."""

    quick: bool = False
    only: list[str] = field(default_factory=list)
    mpi: int = 1
    out: Path = RESULTS
    runs: Path | None = None
    steps: int | None = None
    command: str = ""


def select(only: list[str]) -> list[tuple[str, str]]:
    """(problem, method) cells matching --only (problem, method or problem/method names)."""
    cells = [(p, m) for p in PROBLEMS for m in PROBLEMS[p].cells()]
    if not only:
        return cells
    keep = set()
    for name in only:
        if "/" in name:
            pn, mn = name.split("/", 1)
        elif name in PROBLEMS:
            pn, mn = name, None
        elif name in METHODS:
            pn, mn = None, name
        else:
            raise BenchError(f"--only {name!r}: not a problem ({', '.join(PROBLEMS)}) or method "
                             f"({', '.join(METHODS)})")
        if pn is not None and pn not in PROBLEMS:
            raise BenchError(f"--only {name!r}: unknown problem {pn!r}")
        if mn is not None and mn not in METHODS:
            raise BenchError(f"--only {name!r}: unknown method {mn!r}")
        hit = {(p, m) for p, m in cells if (pn in (None, p)) and (mn in (None, m))}
        if not hit:
            raise BenchError(f"--only {name!r}: problem {pn!r} has no cell {mn!r} (its methods: "
                             f"{', '.join(PROBLEMS[pn].cells())})")
        keep |= hit
    return [c for c in cells if c in keep]


def _launch(problem: str, methods: list[str], ranks: int, opts: Options, workdir: Path,
            out: Path) -> tuple[int, str]:
    bindir = Path(sys.executable).parent
    cmd = [sys.executable, "-m", "coupling.bench", "worker", "--problem", problem,
           "--methods", ",".join(methods), "--workdir", str(workdir), "--out", str(out)]
    if opts.quick:
        cmd.append("--quick")
    if opts.steps:
        cmd += ["--steps", str(opts.steps)]
    if ranks > 1:
        mpiexec = bindir / "mpiexec"
        if not mpiexec.exists():
            raise BenchError(f"--mpi {ranks}: no mpiexec next to {sys.executable}")
        cmd = [str(mpiexec), "-n", str(ranks), *cmd]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    tail: list[str] = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, cwd=ROOT) as proc:
        for line in proc.stdout:  # the cells' one-line results as they finish
            if line.startswith("bench:"):
                print(line.rstrip(), file=sys.stderr, flush=True)
            tail = (tail + [line])[-40:]
    return proc.returncode, "".join(tail)[-2000:]


def run(opts: Options) -> dict:
    """Run the selected grid (and the scaling study with --mpi N > 1); write JSON + Markdown."""
    if opts.mpi < 1:
        raise BenchError(f"--mpi {opts.mpi}: expected a positive number of ranks")
    if opts.steps is not None and opts.steps < 1:
        raise BenchError(f"--steps {opts.steps}: expected a positive integer")
    cells = select(opts.only)
    t_start = time.perf_counter()
    started = _dt.datetime.now().astimezone()
    tmp = None
    if opts.runs is None:
        tmp = tempfile.TemporaryDirectory(prefix="neurofem-bench-")
        workdir = Path(tmp.name)
    else:
        workdir = Path(opts.runs)
        workdir.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    try:
        jobs = [(p, [m for q, m in cells if q == p], 1) for p in PROBLEMS
                if any(q == p for q, _ in cells)]
        if opts.mpi > 1 and ("rve", "vsn-galerkin") in cells:
            jobs.append(("rve", ["vsn-galerkin"], opts.mpi))
        for problem, methods, ranks in jobs:
            out = workdir / f"{problem}-n{ranks}.jsonl"
            rc, tail = _launch(problem, methods, ranks, opts, workdir, out)
            got = [json.loads(ln) for ln in out.read_text().splitlines()] if out.exists() else []
            done = {r["method"] for r in got}
            for m in methods:
                if m not in done:  # the worker died before recording this cell
                    reason = " ".join(tail.split()[-40:]) or f"worker exited with {rc}"
                    got.append({"problem": problem, "number": PROBLEMS[problem].number,
                                "method": m, "label": METHODS[m].label, "ranks": ranks,
                                "status": "failed", "reason": f"worker exit {rc}: {reason}"})
            records.extend(got)
    finally:
        if tmp is not None:
            tmp.cleanup()
    doc = {"command": opts.command, "quick": opts.quick, "started": started.isoformat(),
           "total_s": time.perf_counter() - t_start, "git": git_info(), "machine": machine(),
           "targets": {"time_to": list(TARGETS), "conversion_T": CONVERSION_T},
           "problems": {p.name: _problem_doc(p, opts) for p in PROBLEMS.values()},
           "records": [r for r in records if r["ranks"] == 1],
           "scaling": scaling(records)}
    opts.out.mkdir(parents=True, exist_ok=True)
    stem = f"{started:%Y-%m-%d}-{_machine_tag()}" + ("-quick" if opts.quick else "")
    json_path, md_path = opts.out / f"{stem}.json", opts.out / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    md_path.write_text(markdown(doc))
    doc["paths"] = [str(json_path), str(md_path)]
    return doc


def _problem_doc(p: Problem, opts: Options) -> dict:
    """What the results say about one problem: config, reference, methods, budgets."""
    doc = {"number": p.number, "title": p.title, "example": f"examples/{p.example}",
           "reference": p.reference, "methods": list(p.cells())}
    if any(m != "clif" for m in p.cells()):
        doc["steps"] = opts.steps or (QUICK_STEPS if opts.quick else p.steps)
    if p.clif:
        doc["clif_example"] = f"examples/{p.clif}"
        doc["clif_steps"] = _clif_config(p, opts.quick, opts.steps)["training"]["steps"]
    return doc


def scaling(records: list[dict]) -> list[dict]:
    """Strong scaling of problem 6 (vsn-galerkin): one row per rank count, vs 1 rank."""
    rows = sorted((r for r in records if r["problem"] == "rve" and r["method"] == "vsn-galerkin"
                   and r["status"] == "ok"), key=lambda r: r["ranks"])
    if len(rows) < 2 or rows[0]["ranks"] != 1:
        return []
    base = rows[0]["epochs_per_s"]
    out = []
    for r in rows:
        speedup = r["epochs_per_s"] / base
        out.append({"ranks": r["ranks"], "epochs_per_s": r["epochs_per_s"], "speedup": speedup,
                    "efficiency": speedup / r["ranks"], "train_s": r["train_s"],
                    "rel_l2": r["rel_l2"], "time_to": r["time_to"], "points": r["points"],
                    "peak_mem_mb_per_rank": r["peak_mem_mb_per_rank"]})
    return out


# ---- provenance --------------------------------------------------------------------
def git_info() -> dict:
    """Commit and whether the work tree differs from it."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _machine_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", platform.node() or "machine")[:40]


def machine() -> dict:
    """CPU model, cores, RAM, OS and library versions of this machine."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = round(kb / 1024**2, 1)
    except (OSError, AttributeError):
        pass
    versions = {"python": platform.python_version()}
    for mod in ("torch", "dolfinx", "numpy", "deepxde"):
        versions[mod] = _version(mod)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "ram_gib": ram,
            "os": platform.platform(), "versions": versions, "load_avg_1min_at_start": load,
            "threads_per_rank": 1,
            "note": "shared machine: other jobs ran at the same time, timings are noisy"}


def _version(module: str) -> str | None:
    from importlib import metadata

    names = {"dolfinx": ("fenics-dolfinx", "dolfinx-solver-real", "dolfinx")}.get(module,
                                                                                  (module,))
    for n in names:
        try:
            return metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return None


# ---- the Markdown table ------------------------------------------------------------
def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def _num(v, spec=".3g") -> str:
    return "–" if v is None else format(v, spec)


def _secs(v) -> str:
    return "not reached" if v is None else f"{v:.1f} s"


def cell_row(r: dict) -> str:
    """One Markdown table row of a record."""
    head = f"| {r['number']} {r['problem']} | {r['label']} "
    if r["status"] != "ok":
        return head + f"| {r['status']}: {r.get('reason', '')} |" + " |" * 9
    act = r.get("activity")
    mean = _pct(act["mean"]) if act else "– (ANN)"
    layers = " / ".join(f"{100 * v:.0f}" for v in act["layers"].values()) if act else "–"
    tt = r.get("time_to", {})
    stress = _pct(r.get("stress_rel")) if "stress_rel" in r else "–"
    energy = _num(r.get("energy_ratio")) + (" (vs float FV)" if "energy_baseline" in r else "")
    return (head + f"| {_pct(r['rel_l2'])} | {stress} | {mean} | {layers} | "
            f"{energy} | {r['train_s']:.1f} s | "
            f"{_secs(tt.get('0.05'))} | {_secs(tt.get('0.01'))} | "
            f"{r['peak_mem_mb']:.0f} MiB | {r['ranks']} |")


def markdown(doc: dict) -> str:
    """The result table(s) as Markdown (every number from `doc`)."""
    m, g = doc["machine"], doc["git"]
    lines = [f"# neurofem benchmark{' (quick)' if doc['quick'] else ''}", "",
             f"- command: `{doc['command']}`",
             f"- commit: `{g['commit']}`{' (work tree modified)' if g['dirty'] else ''}",
             f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; "
             f"python {m['versions']['python']}, torch {m['versions']['torch']}, dolfinx "
             f"{m['versions']['dolfinx']}, deepxde {m['versions']['deepxde'] or 'absent'}; "
             f"1 thread per rank; {m['note']} (1-min load at start "
             f"{_num(m['load_avg_1min_at_start'])})",
             f"- started {doc['started']}, total {doc['total_s']:.0f} s", "",
             "Relative L2 error against the reference (integral weights), stress error "
             "‖σ(u) − σ(u_FEM)‖/‖σ(u_FEM)‖ for problem 6, spiking activity (mean; per hidden "
             "layer in %), energy per inference point relative to the equal-shape ANN "
             "(`spiking.energy_report`, 45 nm prices), training wall time, wall time to reach "
             "5% and 1% error (first logged step), peak resident memory (max over ranks).", "",
             "| problem | method | rel. L2 | stress err. | activity | per layer % | energy "
             "vs ANN | train | to 5% | to 1% | peak mem | ranks |",
             "|" + "---|" * 12]
    lines += [cell_row(r) for r in doc["records"]]
    lines += ["", "## Problems", ""]
    for name, p in doc["problems"].items():
        budget = [f"{p['steps']} Adam steps per network method"] if "steps" in p else []
        if "clif_example" in p:
            budget.append(f"clif: `{p['clif_example']}`, {p['clif_steps']} Adam steps on "
                          "rollout windows")
        lines.append(f"{p['number']}. **{name}**: {p['title']} (`{p['example']}`; reference: "
                     f"{p['reference']}; {'; '.join(budget)})")
    conv = [r for r in doc["records"] if r["method"] == "ann2snn" and r["status"] == "ok"]
    if conv:
        lines += ["", "## ANN→SNN conversion: error vs time steps T", "",
                  "| problem | ReLU ANN | " + " | ".join(f"T = {t}" for t in CONVERSION_STEPS)
                  + " |", "|" + "---|" * (2 + len(CONVERSION_STEPS))]
        for r in conv:
            cells = " | ".join(f"{_pct(r['conversion'][str(t)]['rel_l2'])} (E×"
                               f"{r['conversion'][str(t)]['energy_ratio']:.2f})"
                               for t in CONVERSION_STEPS)
            lines.append(f"| {r['problem']} | {_pct(r['ann_rel_l2'])} | {cells} |")
    clif = [r for r in doc["records"] if r["method"] == "clif" and r["status"] == "ok"]
    if clif:
        lines += ["", "## PISNN (C-LIF + CFQ): conservation, spikes and energy per step", "",
                  "Integer rollout from t = 0 with the trained flux network (steady problems: "
                  "relaxation in pseudo-time). Mass drift = Σ quanta − initial − boundary − "
                  "source quanta, final and max |·| over the rollout; spikes and energy are "
                  "means per rollout step; energy compares the spiking update with a float "
                  "finite-volume update of the same flux network (45 nm prices).", "",
                  "| problem | rel. L2 (end) | max over rollout | mass drift (quanta) | "
                  "max drift | total quanta | quanta moved / step | neurons fired / step | "
                  "energy / step: spiking vs float FV | rollout steps | train |",
                  "|" + "---|" * 11]
        for r in clif:
            sp, e = r["spikes_per_step"], r["energy_pj"]
            lines.append(
                f"| {r['number']} {r['problem']} | {_pct(r['rel_l2'])} | "
                f"{'– (relaxation from 0)' if r.get('steady') else _pct(r['rel_l2_max'])}"
                f" | {r['mass_drift']} | {r['mass_drift_max']} | {r['total_quanta']} | "
                f"{sp['quanta_moved_mean']:.4g} (max {sp['quanta_moved_max']}) | "
                f"{sp['neurons_fired_mean']:.4g} of {sp['neurons']} | {e['snn']:.4g} vs "
                f"{e['float_fv']:.4g} pJ ({r['energy_ratio']:.3g}×) | {r['rollout_steps']} | "
                f"{r['train_s']:.1f} s |")
    young = [r for r in doc["records"] if "young" in r]
    if young:
        hs = young[0]["young"]["hashin_shtrikman"]
        lines += ["", "## Problem 6: apparent Young's modulus E = ∫σ_xx / ∫ε_xx (GPa)", "",
                  f"FEM: {young[0]['young']['fem']:.4g}; Hashin–Shtrikman bounds "
                  f"[{hs['lower']:.4g}, {hs['upper']:.4g}] (measured inclusion fraction "
                  f"{_fractions(hs)})", "", "| method | E network | vs FEM | energy-norm err. | "
                  "von Mises err. |", "|---|---|---|---|---|"]
        for r in young:
            y = r["young"]
            lines.append(f"| {r['label']} | {y['network']:.4g} | "
                         f"{100 * (y['network'] / y['fem'] - 1):+.2f}% | {_pct(r['energy_rel'])} "
                         f"| {_pct(r['von_mises_rel'])} |")
    if doc["scaling"]:
        lines += ["", "## Strong scaling, problem 6 (VSN + galerkin, same total points)", "",
                  "| ranks | points | epochs/s | speedup | parallel efficiency | train | to 5% | "
                  "to 1% | rel. L2 | peak mem per rank |", "|" + "---|" * 10]
        for s in doc["scaling"]:
            mem = " / ".join(f"{v:.0f}" for v in s["peak_mem_mb_per_rank"])
            lines.append(f"| {s['ranks']} | {s['points']} | {s['epochs_per_s']:.2f} | "
                         f"{s['speedup']:.2f}× | {100 * s['efficiency']:.0f}% | "
                         f"{s['train_s']:.1f} s | {_secs(s['time_to'].get('0.05'))} | "
                         f"{_secs(s['time_to'].get('0.01'))} | {_pct(s['rel_l2'])} | {mem} MiB |")
    return "\n".join(lines) + "\n"


def _fractions(hs: dict) -> str:
    return ", ".join(f"{k} {100 * v:.1f}%" for k, v in hs["fractions"].items())


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (for the results' provenance)."""
    return shlex.join(["neurofem", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker(sys.argv[2:]))
    sys.exit("usage: python -m coupling.bench worker ... (use `neurofem bench`)")
