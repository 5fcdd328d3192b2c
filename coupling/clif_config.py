"""The run config of `model = "clif"` (PISNN's conservative spiking solver): ``[clif]`` and
``[training]`` tables beside ``[mesh]`` / ``[problem]``; see :mod:`coupling.clif`."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fem.config import MeshSpec, ProblemSpec, parse_mesh, parse_problem, require_table
from fem.errors import ConfigError
from spiking.surrogate import SURROGATE_KINDS

TOP_LEVEL = ("model", "mesh", "problem", "clif", "training", "energy")
TRAINING_KEYS = ("steps", "lr", "seed", "log_every", "checkpoint_every", "keep_checkpoints",
                 "progress", "schedule")


@dataclass
class CLIFSpec:
    """The validated ``[clif]`` table."""

    resolution: float = 1e-4
    scale: float = 0.0
    cfl: float = 0.9
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    activation: str = "tanh"
    geometry: bool = False
    beta: float = 1.0
    surrogate: str = "straight_through"
    slope: float = 1.0
    train_until: float = 0.2
    window: int = 20
    batch: int = 8
    relax_time: float = 1.0
    modes: int = 3
    records: int = 11
    evaluate_every: int = 0


@dataclass
class CLIFTraining:
    """The ``[training]`` keys a C-LIF run uses."""

    steps: int = 300
    lr: float = 3e-3
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    progress: bool = True
    schedule: str = "cosine"


@dataclass
class CLIFRunConfig:
    """A validated C-LIF run config."""

    mesh: MeshSpec | None
    grid: dict | None
    problem: ProblemSpec
    clif: CLIFSpec
    training: CLIFTraining
    raw: dict

    def resolved(self) -> dict:
        """The config with every [clif] and [training] default filled in."""
        doc = copy.deepcopy(self.raw)
        doc["clif"] = asdict(self.clif)
        doc["training"] = asdict(self.training)
        return doc


def _num(v, key: str, *, positive=True, integer=False, lo=None, hi=None):
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if integer:
        ok = ok and isinstance(v, int)
    if ok and positive:
        ok = v > 0
    if ok and lo is not None:
        ok = v >= lo
    if ok and hi is not None:
        ok = v <= hi
    if not ok:
        what = "integer" if integer else "number"
        rng = f" in [{lo}, {hi}]" if lo is not None and hi is not None else ""
        pos = "positive " if positive else ""
        raise ConfigError(key, f"expected a {pos}{what}{rng}, got {v!r}")
    return v


def parse_clif_config(doc: dict) -> CLIFRunConfig:
    """Validate a run config with ``model = "clif"`` (errors name the key)."""
    for key in doc:
        if key not in TOP_LEVEL:
            raise ConfigError(key, "unknown table for model 'clif' (allowed: "
                              f"{', '.join(TOP_LEVEL)})")
    mesh_t = require_table(doc, "mesh")
    grid, mesh = None, None
    if mesh_t.get("kind") == "grid":
        grid = _parse_grid(mesh_t)
    else:
        mesh = parse_mesh(mesh_t)
    problem = parse_problem(require_table(doc, "problem"))
    if problem.type not in ("heat", "poisson"):
        raise ConfigError("problem.type", f"model 'clif' solves heat and poisson (Laplace), "
                          f"got {problem.type!r}")
    if isinstance(problem.coefficients, dict):
        raise ConfigError("problem.coefficients", "model 'clif' needs one number (the flux "
                          "network has no phase input)")
    if problem.type == "poisson":
        if grid is None:
            raise ConfigError("mesh.kind", "steady problems (poisson) need kind = \"grid\" "
                              "(training transients are the box's eigenmodes)")
        if problem.exact is None:
            raise ConfigError("problem.exact", "missing: the exact steady solution")
        if problem.source and not (problem.source[0].is_constant and
                                   float(problem.source[0](np.zeros((3, 1)))[0]) == 0.0):
            raise ConfigError("problem.source", "steady C-LIF runs solve Laplace: source must be 0")
    if grid is not None and problem.type == "heat" and problem.exact is None:
        raise ConfigError("problem.exact",
                          "missing: a grid run is compared with the exact solution")
    for i, bc in enumerate(problem.bcs):
        if grid is not None and bc.boundary not in ("*", *[f"{a}{s}" for a in "xyz"[:len(grid['n'])]
                                                           for s in "01"]):
            raise ConfigError(f"problem.bcs[{i}].boundary", f"no boundary {bc.boundary!r} on a "
                              f"{len(grid['n'])}D grid")
    clif = _parse_clif(doc.get("clif", {}))
    training = _parse_training(doc.get("training", {}))
    if problem.type == "heat" and clif.train_until > problem.time.t_end:
        raise ConfigError("clif.train_until", f"{clif.train_until} exceeds problem.time.t_end")
    return CLIFRunConfig(mesh, grid, problem, clif, training, copy.deepcopy(doc))


def _parse_grid(t: dict) -> dict:
    extra = sorted(set(t) - {"kind", "n", "lower", "upper"})
    if extra:
        raise ConfigError(f"mesh.{extra[0]}",
                          "unknown key for kind 'grid' (allowed: n, lower, upper)")
    n = t.get("n")
    if not (isinstance(n, list) and 1 <= len(n) <= 3 and all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 2 for k in n)):
        raise ConfigError("mesh.n", f"expected 1 to 3 cell counts >= 2, got {n!r}")
    d = len(n)
    lo = t.get("lower", [0.0] * d)
    hi = t.get("upper", [1.0] * d)
    for key, v in (("mesh.lower", lo), ("mesh.upper", hi)):
        if not (isinstance(v, list) and len(v) == d and all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in v)):
            raise ConfigError(key, f"expected {d} numbers, got {v!r}")
    if any(b <= a for a, b in zip(lo, hi, strict=True)):
        raise ConfigError("mesh.upper", f"must exceed mesh.lower {lo}, got {hi}")
    return {"n": n, "lower": [float(x) for x in lo], "upper": [float(x) for x in hi]}


def _parse_clif(t: Any) -> CLIFSpec:
    if not isinstance(t, dict):
        raise ConfigError("clif", "expected a table")
    spec = CLIFSpec()
    known = set(asdict(spec))
    for key, v in t.items():
        k = f"clif.{key}"
        if key not in known:
            raise ConfigError(k, f"unknown key (allowed: {', '.join(sorted(known))})")
        if key in ("resolution", "cfl", "slope", "train_until", "relax_time"):
            v = float(_num(v, k, hi=1.0 if key in ("resolution", "cfl") else None,
                           lo=0.0 if key in ("resolution", "cfl") else None))
        elif key == "scale":
            v = float(_num(v, k, positive=False, lo=0.0, hi=math.inf))
        elif key == "beta":
            v = float(_num(v, k, positive=False, lo=0.0, hi=1.0))
        elif key in ("window", "batch", "modes", "records"):
            v = _num(v, k, integer=True)
        elif key == "evaluate_every":
            v = _num(v, k, integer=True, positive=False, lo=0, hi=10**9)
        elif key == "hidden":
            if not (isinstance(v, list) and v and all(isinstance(h, int) and not isinstance(h, bool)
                                                      and h > 0 for h in v)):
                raise ConfigError(k, f"expected a list of positive layer widths, got {v!r}")
        elif key == "activation":
            if v not in ("tanh", "softplus", "gelu", "silu"):
                raise ConfigError(k, f"unknown value {v!r} "
                                  "(choose from gelu, silu, softplus, tanh)")
        elif key == "geometry":
            if not isinstance(v, bool):
                raise ConfigError(k, f"expected true or false, got {v!r}")
        elif key == "surrogate":
            if v not in SURROGATE_KINDS:
                raise ConfigError(k, f"unknown value {v!r} "
                                  f"(choose from {', '.join(SURROGATE_KINDS)})")
        setattr(spec, key, v)
    if spec.records < 2:
        raise ConfigError("clif.records", f"expected an integer >= 2, got {spec.records}")
    return spec


def _parse_training(t: Any) -> CLIFTraining:
    if not isinstance(t, dict):
        raise ConfigError("training", "expected a table")
    spec = CLIFTraining()
    for key, v in t.items():
        k = f"training.{key}"
        if key not in TRAINING_KEYS:
            raise ConfigError(k, "unknown key for model 'clif' "
                              f"(allowed: {', '.join(TRAINING_KEYS)})")
        if key == "lr":
            v = float(_num(v, k))
        elif key == "progress":
            if not isinstance(v, bool):
                raise ConfigError(k, f"expected true or false, got {v!r}")
        elif key == "schedule":
            if v not in ("none", "cosine"):
                raise ConfigError(k, f"unknown value {v!r} (choose from none, cosine)")
        elif key == "seed":
            v = _num(v, k, integer=True, positive=False, lo=0, hi=2**63)
        else:
            v = _num(v, k, integer=True, positive=key != "steps", lo=0 if key == "steps" else None,
                     hi=10**12 if key == "steps" else None)
        setattr(spec, key, v)
    return spec
