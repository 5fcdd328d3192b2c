"""The run config of `neurofem train`: one TOML file, validated into a :class:`RunConfig`.

::

    [mesh]        # passed to meshes.build (fem.config.parse_mesh)
    [problem]     # the PDE and its FEM reference (fem.config.parse_problem)
    [network]     # spiking.MLPConfig keys; in_dim, out_dim and bounds come from the mesh
    [inputs]
    interface_distance = false  # also feed |distance to the nearest inclusion| (RVEs, galerkin)
    [residual]
    kind = "galerkin"        # galerkin | sp | autograd
    neighbours = "mesh"      # sp: mesh | knn | radius
    rings = 1                # sp, mesh neighbourhoods: 1-ring or 2-ring
    k = 12                   # sp, knn
    radius = 0.1             # sp, radius
    order = 1                # sp: 1 = NeuroPINNs projection, 2 = quadratic (our extension)
    quadrature_degree = 2    # autograd: volume quadrature of the residual integral
    [boundary]
    mode = "exact"           # exact | hard (u = g + D·N) | soft (penalty); default: exact for
                             # galerkin, hard for sp, soft for autograd and space-time runs
    weight = 100.0           # soft: penalty weight of ∫_ΓD (u − g)²
    [training]
    steps = 2000, lr = 1e-3, optimizer = "adam", lbfgs_steps = 0,
    schedule = "none" | "cosine" | "step", gamma = 0.5, step_size = 1000,
    batch = 0 (full batch), dtype = "float32" | "float64", seed = 0,
    log_every = 50, checkpoint_every = 500, keep_checkpoints = 3, progress = true

Every error is a :class:`fem.errors.ConfigError` naming the key, e.g.
``config training.lr: expected a positive number, got -1``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from fem.config import MeshSpec, ProblemSpec, load_toml, parse_mesh, parse_problem, require_table
from fem.errors import ConfigError

RESIDUALS = ("galerkin", "sp", "autograd")
BOUNDARY_MODES = ("exact", "hard", "soft")
NEIGHBOURS = ("mesh", "knn", "radius")
OPTIMIZERS = ("adam",)
SCHEDULES = ("none", "cosine", "step")
DTYPES = ("float32", "float64")
TOP_LEVEL = ("model", "mesh", "problem", "network", "inputs", "residual", "boundary", "training",
             "energy")
# Problems each residual can train (time-dependent problems are space-time point sets).
SPACE_TIME = ("heat", "burgers")  # trained on (x, t) points: see coupling/spacetime.py
SUPPORTED = {
    "galerkin": ("poisson", "poisson_boltzmann", "elasticity"),
    "sp": ("poisson", "poisson_boltzmann", "heat", "burgers"),
    "autograd": ("poisson", "poisson_boltzmann", "heat", "burgers"),
}


@dataclass
class ResidualSpec:
    """How the network's outputs at mesh points become a loss."""

    kind: str = "galerkin"
    neighbours: str = "mesh"
    rings: int = 1
    k: int = 12
    radius: float | None = None
    order: int = 1
    quadrature_degree: int = 2


@dataclass
class InputSpec:
    """Extra network inputs computed from the geometry (beside the coordinates)."""

    interface_distance: bool = False  # |distance to the nearest inclusion surface| (RVEs)


@dataclass
class BoundarySpec:
    """How Dirichlet data are imposed on the network."""

    mode: str = "exact"
    weight: float = 100.0


@dataclass
class TrainingSpec:
    """Optimizer, schedule, batching, precision, seed, logging and checkpoint cadence."""

    steps: int = 2000
    lr: float = 1e-3
    optimizer: str = "adam"
    lbfgs_steps: int = 0
    schedule: str = "none"
    gamma: float = 0.5
    step_size: int = 1000
    batch: int = 0
    dtype: str = "float32"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    progress: bool = True


@dataclass
class RunConfig:
    """A validated run config; `raw` is the TOML document as given (hashed for resume)."""

    mesh: MeshSpec
    problem: ProblemSpec
    network: dict[str, Any]
    residual: ResidualSpec
    boundary: BoundarySpec
    training: TrainingSpec
    raw: dict[str, Any] = field(default_factory=dict)
    inputs: InputSpec = field(default_factory=InputSpec)

    def resolved(self) -> dict[str, Any]:
        """The config as resolved: the tables as given plus every residual/boundary/training
        default (what a run directory's config.toml holds, and what its hash is taken of)."""
        doc = copy.deepcopy(self.raw)
        for key, spec in (("inputs", self.inputs), ("residual", self.residual),
                          ("boundary", self.boundary), ("training", self.training)):
            doc[key] = {k: v for k, v in asdict(spec).items() if v is not None}
        return doc


def load_run_config(path) -> RunConfig:
    """Read and validate a run config file."""
    return parse_run_config(load_toml(path))


def parse_run_config(doc: dict[str, Any]) -> RunConfig:
    """Validate a run config document (see the module docstring)."""
    unknown = sorted(set(doc) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(unknown[0], f"unknown table (allowed: {', '.join(TOP_LEVEL)})")
    if doc.get("model", "network") != "network":
        raise ConfigError("model", f"expected \"network\" here, got {doc['model']!r}")
    mesh = parse_mesh(require_table(doc, "mesh"))
    problem = parse_problem(require_table(doc, "problem"))
    network = doc.get("network", {})
    if not isinstance(network, dict):
        raise ConfigError("network", f"expected a table, got {network!r}")
    for key in ("in_dim", "out_dim", "bounds"):
        if key in network:
            raise ConfigError(f"network.{key}", "is set from the mesh and problem; remove it")
    inputs = _fill(InputSpec(), doc.get("inputs", {}), "inputs")
    residual = _fill(ResidualSpec(), doc.get("residual", {}), "residual")
    boundary = _fill(BoundarySpec(), doc.get("boundary", {}), "boundary")
    training = _fill(TrainingSpec(), doc.get("training", {}), "training")
    _check_residual(residual, problem, network)
    if "mode" not in doc.get("boundary", {}):  # the natural choice for each residual
        boundary.mode = ("soft" if problem.type in SPACE_TIME or residual.kind == "autograd"
                         else "exact" if residual.kind == "galerkin" else "hard")
    if problem.type in SPACE_TIME and boundary.mode != "soft":
        raise ConfigError("boundary.mode", f"{problem.type!r} trains on space-time points with "
                          "initial and boundary penalties: set mode = \"soft\"")
    _check_boundary(boundary, residual)
    _check_training(training, residual)
    if inputs.interface_distance and residual.kind != "galerkin":
        raise ConfigError("inputs.interface_distance", "is precomputed at the training points "
                          "and needs the galerkin residual (sp/autograd differentiate the input)")
    return RunConfig(mesh, problem, dict(network), residual, boundary, training,
                     copy.deepcopy(doc), inputs)


def _fill(spec, table: Any, key: str):
    """Copy a table's values onto a dataclass of defaults, checking names and types."""
    if not isinstance(table, dict):
        raise ConfigError(key, f"expected a table, got {table!r}")
    defaults = vars(spec)
    for name, value in table.items():
        if name not in defaults:
            raise ConfigError(f"{key}.{name}", f"unknown key (allowed: {', '.join(defaults)})")
        default = defaults[name]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float) or default is None:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok:
            kind = {bool: "boolean", int: "integer", str: "string"}.get(type(default), "number")
            raise ConfigError(f"{key}.{name}", f"expected a {kind}, got {value!r}")
        setattr(spec, name, value)
    return spec


def _choice(value: str, options: tuple[str, ...], key: str) -> None:
    if value not in options:
        raise ConfigError(key, f"unknown value {value!r} (choose from {', '.join(options)})")


def _positive(value: float, key: str, allow_zero: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        word = "non-negative" if allow_zero else "positive"
        raise ConfigError(key, f"expected a {word} number, got {value!r}")


def _check_residual(r: ResidualSpec, problem: ProblemSpec, network: dict) -> None:
    _choice(r.kind, RESIDUALS, "residual.kind")
    if problem.type not in SUPPORTED[r.kind]:
        raise ConfigError("residual.kind", f"{r.kind!r} cannot train problem.type "
                          f"{problem.type!r} (it trains {', '.join(SUPPORTED[r.kind])})")
    if r.kind == "autograd" and network.get("neuron", "vsn") != "ann":
        raise ConfigError("residual.kind", "'autograd' needs network.neuron = \"ann\": spikes "
                          "have no derivative with respect to the input (use 'sp' or 'galerkin')")
    if r.kind == "galerkin" and problem.degree != 1:
        raise ConfigError("problem.degree", "the galerkin residual evaluates the network at "
                          f"vertices and needs degree 1, got {problem.degree}")
    if r.kind == "sp" and problem.degree != 1 and problem.type not in SPACE_TIME:
        raise ConfigError("problem.degree", f"the sp residual uses P1 nodes, got {problem.degree}")
    _choice(r.neighbours, NEIGHBOURS, "residual.neighbours")
    if r.rings not in (1, 2):
        raise ConfigError("residual.rings", f"expected 1 or 2, got {r.rings!r}")
    if r.k < 3:
        raise ConfigError("residual.k", f"expected at least 3 neighbours, got {r.k!r}")
    if r.neighbours == "radius" and r.radius is None:
        raise ConfigError("residual.radius", "missing (needed with neighbours = \"radius\")")
    if r.radius is not None:
        _positive(r.radius, "residual.radius")
    if r.order not in (1, 2):
        raise ConfigError("residual.order", f"expected 1 or 2, got {r.order!r}")
    if r.quadrature_degree < 1:
        raise ConfigError("residual.quadrature_degree", f"expected >= 1, got {r.quadrature_degree}")


def _check_boundary(b: BoundarySpec, r: ResidualSpec) -> None:
    _choice(b.mode, BOUNDARY_MODES, "boundary.mode")
    if b.mode == "exact" and r.kind != "galerkin":
        raise ConfigError("boundary.mode", f"'exact' sets Dirichlet dofs and needs the galerkin "
                          f"residual; use 'hard' or 'soft' with {r.kind!r}")
    if b.mode == "hard" and r.kind == "autograd":
        raise ConfigError("boundary.mode", "'hard' lifts with a P1 distance function, which has "
                          "no second derivative for autograd; use 'soft'")
    _positive(b.weight, "boundary.weight")


def _check_training(t: TrainingSpec, r: ResidualSpec) -> None:
    for key in ("steps", "log_every", "checkpoint_every", "keep_checkpoints", "step_size"):
        if getattr(t, key) < 1:
            raise ConfigError(f"training.{key}",
                              f"expected a positive integer, got {getattr(t, key)!r}")
    for key in ("lbfgs_steps", "batch", "seed"):
        if getattr(t, key) < 0:
            raise ConfigError(f"training.{key}",
                              f"expected a non-negative integer, got {getattr(t, key)!r}")
    _positive(t.lr, "training.lr")
    _positive(t.gamma, "training.gamma")
    _choice(t.optimizer, OPTIMIZERS, "training.optimizer")
    _choice(t.schedule, SCHEDULES, "training.schedule")
    _choice(t.dtype, DTYPES, "training.dtype")
    if t.batch and r.kind == "galerkin":
        raise ConfigError("training.batch", "the galerkin energy couples all dofs and trains "
                          "full-batch; set batch = 0")
