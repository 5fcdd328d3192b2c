"""The benchmark grid's definitions: problems, methods and the run config of each cell.

Each problem has one base config (``benchmarks/configs/``, the same files as the
repository's ``examples/``; they ship with the package so an installed ``neurofem bench``
needs no checkout), its method being the VSN network the problem is best trained with.
A method is a set of overrides of that config, so every method of a problem gets the same
network shape, mesh, points and step budget. ``clif`` is a different model (a learned
flux operator rolled out in time), so its cells run the problem's ``model = "clif"``
config. A cell a method cannot run raises :class:`NotApplicable` with the reason.
This module imports the standard library only: the CLI reads it for ``--help``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

CONFIGS = Path(str(resources.files(__package__) / "configs"))
TARGETS = (0.05, 0.01)  # time-to-accuracy thresholds (relative L2)
CONVERSION_STEPS = (8, 32, 128)  # T of the ANN→SNN baseline; the table reports T = 32
CONVERSION_T = 32
QUICK_STEPS = 30


class BenchError(Exception):
    """Bad `neurofem bench` input (one line, exit code 2)."""


class NotApplicable(Exception):
    """A method that cannot run a problem (the message says why)."""


def load_config(name: str) -> dict:
    """A packaged base config (a file name of ``benchmarks/configs/``) as a document."""
    from fem.config import load_toml  # deferred: loads DOLFINx

    return load_toml(CONFIGS / name)


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
        """Whether the problem is posed on (x, t) (no Galerkin energy exists)."""
        return self.name in ("burgers1d", "heat1d")

    def base(self) -> dict:
        """The example config as a document."""
        return load_config(self.example)

    @property
    def has_fem_rival(self) -> bool:
        """Whether one FE solve answers the problem (steady, not a C-LIF-only problem)."""
        return not self.space_time and not self.methods

    def cells(self) -> tuple[str, ...]:
        """The methods benchmarked on this problem, in table order."""
        circuit = () if self.space_time else ("circuit",)  # an SPD operator is needed
        return self.methods or NETWORK_METHODS + circuit + (("clif",) if self.clif else ())


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
    neuron: str  # ann | vsn | if (converted) | clif | circuit


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ann-autograd", "ANN-PINN (autograd)", "ann"),
    Method("ann-sp", "SP-PINN (ANN + sp)", "ann"),
    Method("vsn-sp", "NeuroPINN (VSN + sp)", "vsn"),
    Method("vsn-galerkin", "VSN + galerkin (ours)", "vsn"),
    Method("ann2snn", "ANN→SNN conversion (IF, T=32)", "if"),
    Method("deepxde", "DeepXDE vanilla PINN", "ann"),
    Method("clif", "PISNN (C-LIF + CFQ)", "clif"),
    Method("circuit", "Spiking FEM circuit (NeuroFEM, training-free)", "circuit"),
)}
NETWORK_METHODS = tuple(m for m in METHODS if m not in ("clif", "circuit"))
CIRCUIT_STEPS = 20000  # step limit of a full circuit cell (it stops 200 steps after 1e-3)

DEEPXDE_INTERFACES = (
    "DeepXDE cannot state the interface conditions: its PINN is one smooth network whose PDE "
    "and operator BCs see a single gradient at a point, so traction continuity "
    "σ_m(u)·n = σ_i(u)·n with moduli jumping 20× across the 8 sphere surfaces forces the "
    "wrong strain there (the solution's strain jumps; it needs one-sided derivatives or a "
    "network per phase), and its geometries carry no phase tags for per-phase moduli")

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


def _apply_method(doc: dict, problem: Problem, method: str) -> None:
    """Set `doc`'s network, residual and boundary for `method` (NotApplicable: cannot)."""
    elastic = doc["problem"]["type"] == "elasticity"
    soft = {"mode": "soft", "weight": float(doc.get("boundary", {}).get("weight", 100.0))}
    net = doc["network"]
    if method in ("ann-autograd", "deepxde"):
        if elastic and method == "deepxde":
            raise NotApplicable(DEEPXDE_INTERFACES)
        doc.update(network=_ann_network(net, "tanh"), residual={"kind": "autograd"},
                   boundary=soft)
        if elastic:  # residuals.autograd_elastic: interface terms + the inclusion-depth input
            doc["inputs"] = {**doc.get("inputs", {}), "interface_distance": True}
            # its penalties ∫|u − g|²/h³ already carry the residual's units: weight 1
            # (h = 0.2 trial, 300 steps, shared moduli: 19% off FEM vs 56% at weight 100);
            # no Fourier features (their second derivatives: 50% vs 15% at h = 0.2, 600 steps)
            doc["boundary"] = {"mode": "soft", "weight": 1.0}
            doc["network"] = {**doc["network"], "fourier_features": 0}
    elif method in ("ann-sp", "vsn-sp"):  # elasticity: residuals.sp_elastic (phase-wise SP)
        if method == "ann-sp":
            doc["network"] = _ann_network(net, "tanh")
        doc["residual"] = _sp_residual(doc)
        doc["boundary"] = soft if problem.space_time else {"mode": "hard"}
    elif method == "vsn-galerkin":
        if problem.space_time:
            raise NotApplicable("the Galerkin energy needs a symmetric elliptic FE operator; "
                                "space-time heat/Burgers have none")
        doc.update(residual={"kind": "galerkin"}, boundary={"mode": "exact"})
    elif method == "ann2snn":
        doc["network"] = _ann_network(net, "relu")
        if problem.space_time:  # ReLU has no second derivative: autograd cannot train it
            doc.update(residual=_sp_residual(doc), boundary=soft)
        else:
            doc.update(residual={"kind": "galerkin"}, boundary={"mode": "exact"})
    else:
        raise BenchError(f"--only: unknown method {method!r} (methods: {', '.join(METHODS)})")


def method_config(problem: Problem, method: str, quick: bool = False,
                  steps: int | None = None) -> dict:
    """The run config of one cell (raises NotApplicable with the reason); `steps`
    overrides the problem's budget."""
    if method == "clif":
        return clif_config(problem, quick, steps)
    if method == "circuit":
        return circuit_config(problem, quick, steps)
    if method not in problem.cells():
        raise NotApplicable(f"problem {problem.name} is a C-LIF (PISNN) problem: its reference "
                            "set-up exists as a model = \"clif\" example only")
    doc = merge(problem.base(), problem.overrides)
    budget = problem.steps
    if quick:
        doc = merge(doc, problem.quick)
        budget = QUICK_STEPS
    steps = steps or budget
    _apply_method(doc, problem, method)
    doc["training"] = merge(doc.get("training", {}), {
        "steps": steps, "lbfgs_steps": 0, "progress": False, "log_every": max(1, steps // 20),
        "checkpoint_every": steps, "keep_checkpoints": 1})
    return doc


def circuit_config(problem: Problem, quick: bool, steps: int | None) -> dict:
    """The circuit cell's config: the problem's mesh and problem, a [circuit] table."""
    if problem.space_time or "circuit" not in problem.cells():
        raise NotApplicable("the spiking FEM circuit needs a steady SPD operator; this "
                            "problem has none")
    doc = merge(problem.base(), problem.overrides)
    if quick:
        doc = merge(doc, problem.quick)
    budget = steps or (QUICK_STEPS if quick else CIRCUIT_STEPS)
    return {"mesh": doc["mesh"], "problem": doc["problem"],
            "circuit": {"steps": budget, "targets": sorted({*TARGETS, 1e-3}, reverse=True),
                        "hold": 200}}


def clif_config(problem: Problem, quick: bool, steps: int | None) -> dict:
    """The clif cell's config: the problem's C-LIF example with the bench's budget."""
    if problem.clif is None:
        raise NotApplicable("the C-LIF solver (PISNN) here covers heat and Laplace on grids or "
                            "meshes; this problem has no clif example")
    doc = load_config(problem.clif)
    if quick:
        doc = merge(doc, problem.clif_quick)
    budget = steps or (QUICK_STEPS if quick else int(doc.get("training", {}).get("steps", 300)))
    doc["training"] = merge(doc.get("training", {}), {
        "steps": budget, "progress": False, "checkpoint_every": budget, "keep_checkpoints": 1})
    return doc


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
