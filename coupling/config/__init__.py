"""The run config of `neurofem train`: one TOML file, one schema, validated into a record.

The schema is a pydantic union discriminated on ``model`` ("network", the default, or
"clif": :mod:`coupling.config.clif`); it is checked as a whole before any mesh or FEM
work and every error is one :class:`fem.errors.ConfigError` naming the key, e.g.
``config training.lr: expected a number > 0.0, got -1``. A network run::

    [mesh]        # passed to meshes.build (fem.config.MeshTable)
    [problem]     # the PDE and its FEM reference (fem.config.ProblemTable)
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
    log_every = 50, checkpoint_every = 500, keep_checkpoints = 3, progress = true,
    max_memory_gb = (this machine's memory: coupling.training.resources refuses bigger runs)
    levels = [{size = 0.2, steps = 500}, {size = 0.1, steps = 300}, {steps = 200}]
                             # coarse to fine, the last level is [mesh]; level_moments,
                             # offnode_every, offnode_points
    [energy]      # spiking.EnergyTable: mac_pj, acc_pj, read_pj, write_pj, name
    [bank]        # many microstructures, one network (coupling.config.bank; with [parameters])
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Tag, TypeAdapter, model_validator

from coupling.config.bank import BankTable, check_bank
from coupling.config.clif import ClifRun, CLIFRunConfig
from coupling.config.optimizer import check_optimizer
from coupling.config.tables import EnergySpec
from coupling.config.training import TrainingSpec
from fem.config import VECTOR_TYPES, MeshTable, ProblemTable
from fem.errors import ConfigError
from fem.parameters import ParametersTable
from fem.schema import (
    Positive,
    Table,
    between,
    load_toml,
    validate,
)
from spiking import MLPConfig

MODELS = ("network", "clif")
RESIDUALS = ("galerkin", "sp", "autograd")
BOUNDARY_MODES = ("exact", "hard", "soft")
NEIGHBOURS = ("mesh", "knn", "radius")
# Problems each residual can train (time-dependent problems are space-time point sets).
SPACE_TIME = ("heat", "burgers")  # trained on (x, t) points: see coupling/residuals/spacetime.py
SUPPORTED = {
    "galerkin": ("poisson", "poisson_boltzmann", "elasticity"),
    "sp": ("poisson", "poisson_boltzmann", "heat", "burgers", "elasticity"),
    "autograd": ("poisson", "poisson_boltzmann", "heat", "burgers", "elasticity"),
}
class ResidualSpec(Table):
    """How the network's outputs at mesh points become a loss."""

    table_key: ClassVar[str] = "residual"

    kind: Literal[RESIDUALS] = "galerkin"
    neighbours: Literal[NEIGHBOURS] = "mesh"
    rings: between(1, 2, integer=True) = 1
    k: between(3, 10_000, integer=True) = 12
    radius: Positive | None = None
    order: between(1, 2, integer=True) = 1
    quadrature_degree: between(1, 20, integer=True) = 2


class InputSpec(Table):
    """Extra network inputs computed from the geometry (beside the coordinates)."""

    table_key: ClassVar[str] = "inputs"

    interface_distance: bool = False  # |distance to the nearest inclusion surface| (RVEs)


class BoundarySpec(Table):
    """How Dirichlet data are imposed on the network (mode None: the residual's default)."""

    table_key: ClassVar[str] = "boundary"

    mode: Literal[BOUNDARY_MODES] | None = None
    weight: Positive = 100.0
    # the lift g̃ + φ·N: "adf" (distance functions, no PDE solve), "harmonic" (DOLFINx
    # Laplace solve: the Laplace problem's own solution), "none" (exact: dofs only)
    lift: Literal["adf", "harmonic", "none"] = "adf"


def default_boundary_mode(residual: str, space_time: bool = False) -> str:
    """How Dirichlet data are imposed unless told: the natural choice for each residual."""
    if space_time or residual == "autograd":
        return "soft"
    return "exact" if residual == "galerkin" else "hard"


@dataclass
class RunConfig:
    """A validated run config; `raw` is the TOML document as given (hashed for resume)."""

    mesh: MeshTable
    problem: ProblemTable
    network: MLPConfig  # out_dim = the field's components; in_dim, bounds: from the mesh
    residual: ResidualSpec
    boundary: BoundarySpec
    training: TrainingSpec
    raw: dict[str, Any] = field(default_factory=dict)
    inputs: InputSpec = field(default_factory=InputSpec)
    parameters: ParametersTable | None = None  # a parametric run ([parameters]; fem.parameters)
    bank: BankTable | None = None  # many microstructures ([bank]; coupling.config.bank)

    def resolved(self) -> dict[str, Any]:
        """The config as resolved: the tables as given plus every residual/boundary/training
        default (what a run directory's config.toml holds, and what its hash is taken of)."""
        doc = copy.deepcopy(self.raw)
        for key, spec in (("inputs", self.inputs), ("residual", self.residual),
                          ("boundary", self.boundary), ("training", self.training)):
            doc[key] = spec.model_dump(exclude_none=True)
        return doc


class NetworkRun(Table):
    """A ``model = "network"`` run: a coordinate network trained on a PDE residual."""

    model: Literal["network"] = "network"
    mesh: MeshTable
    problem: ProblemTable
    network: MLPConfig = MLPConfig()  # spiking's own model: [network] is checked once
    inputs: InputSpec = InputSpec()
    residual: ResidualSpec = ResidualSpec()
    boundary: BoundarySpec = BoundarySpec()
    training: TrainingSpec = TrainingSpec()
    energy: EnergySpec | None = None
    parameters: ParametersTable | None = None
    bank: BankTable | None = None

    @model_validator(mode="after")
    def _consistent(self) -> NetworkRun:
        r, p, b = self.residual, self.problem, self.boundary
        if self.parameters is not None:
            self._check_parametric()
        elif p.type not in SUPPORTED[r.kind]:
            raise ConfigError("residual.kind", f"{r.kind!r} cannot train problem.type "
                              f"{p.type!r} (it trains {', '.join(SUPPORTED[r.kind])})")
        if r.kind == "autograd" and self.network.neuron != "ann":
            raise ConfigError("residual.kind", "'autograd' needs network.neuron = \"ann\": "
                              "spikes have no derivative with respect to the input (use 'sp' "
                              "or 'galerkin')")
        # galerkin evaluates the network at the dofs of any degree (P2: vertices and edge
        # midpoints); sp differentiates P1 nodal values, a parametric run is P1-only
        if p.degree != 1 and (self.parameters is not None or (r.kind == "sp" and p.type
                                                               not in SPACE_TIME)):
            what = "a parametric run" if self.parameters is not None else f"the {r.kind} residual"
            raise ConfigError("problem.degree", f"{what} evaluates the network at P1 nodes and "
                              f"needs degree 1, got {p.degree}")
        if r.neighbours == "radius" and r.radius is None:
            raise ConfigError("residual.radius", "missing (needed with neighbours = \"radius\")")
        self.training.check_levels(self.mesh.size, self.parameters is not None)
        if b.mode is None:  # the natural choice for each residual
            b.mode = default_boundary_mode(r.kind, p.type in SPACE_TIME)
        if p.type in SPACE_TIME and b.mode != "soft":
            raise ConfigError("boundary.mode", f"{p.type!r} trains on space-time points with "
                              "initial and boundary penalties: set mode = \"soft\"")
        if b.mode == "exact" and r.kind != "galerkin":
            raise ConfigError("boundary.mode", "'exact' sets Dirichlet dofs and needs the "
                              f"galerkin residual; use 'hard' or 'soft' with {r.kind!r}")
        if b.mode == "soft" and r.kind == "galerkin":  # its energy has no boundary term
            raise ConfigError("boundary.mode", "'soft' would add no Dirichlet penalty to the "
                              "galerkin energy (the data would be ignored); use 'exact' or 'hard'")
        if b.mode == "hard" and r.kind == "autograd":
            raise ConfigError("boundary.mode", "'hard' lifts with a P1 distance function, "
                              "which has no second derivative for autograd; use 'soft'")
        if self.inputs.interface_distance and not (
                r.kind == "galerkin" or (r.kind == "autograd" and p.type == "elasticity")):
            raise ConfigError("inputs.interface_distance", "is precomputed at the training "
                              "points and serves the galerkin residual, or autograd on "
                              "elasticity (the differentiable inclusion depth); sp "
                              "differentiates nodal values")
        check_optimizer(self)
        check_bank(self)
        return self

    def _check_parametric(self) -> None:
        """A parametric run trains the galerkin energy with exact Dirichlet data."""
        from fem.problems.parametric import PARAMETRIC_TYPES  # deferred: loads Gmsh

        if self.problem.type not in PARAMETRIC_TYPES:
            raise ConfigError("problem.type", f"{self.problem.type!r} has no parametric form "
                              f"(one of {', '.join(PARAMETRIC_TYPES)})")
        if self.residual.kind != "galerkin":
            raise ConfigError("residual.kind", "a parametric run ([parameters]) trains the "
                              "galerkin energy; set kind = \"galerkin\"")
        if self.boundary.mode not in (None, "exact"):
            raise ConfigError("boundary.mode", "a parametric run imposes its Dirichlet data "
                              "exactly; set mode = \"exact\"")
        if self.training.batch or self.training.consistency_weight:
            raise ConfigError("parameters", "a parametric run batches over parameters: "
                              "training.batch and training.consistency_weight are not "
                              "available with it")

    @model_validator(mode="before")
    @classmethod
    def _network_shape_from_the_problem(cls, data: Any) -> Any:
        """in_dim, out_dim and bounds come from the mesh and problem, never from [network];
        out_dim is set to the field's components so output_scale/shift lists are checked."""
        net = data.get("network") if isinstance(data, dict) else None
        if not isinstance(net, dict):
            return data
        for name in ("in_dim", "out_dim", "bounds"):
            if name in net:
                raise ConfigError(f"network.{name}", "is set from the mesh and problem; "
                                  "remove it")
        n = _components(data.get("mesh"), data.get("problem"))
        return {**data, "network": {**net, "out_dim": n}} if n else data

    def record(self, doc: dict[str, Any]) -> RunConfig:
        """The RunConfig record of this run; `doc` is the document as given."""
        return RunConfig(self.mesh, self.problem, self.network, self.residual, self.boundary,
                         self.training, copy.deepcopy(doc), self.inputs, self.parameters,
                         self.bank)


def _components(mesh: Any, problem: Any) -> int | None:
    """Components of the problem's field (the mesh dimension for vector problems), or None
    when mesh or problem are not valid yet (their own errors come first)."""
    import meshes.registry as registry  # deferred: gmsh and the builders, for vector fields

    if not (isinstance(mesh, dict) and isinstance(problem, dict)):
        return None
    if problem.get("type") not in VECTOR_TYPES:
        return 1
    kind = mesh.get("kind")
    if kind == "interval":
        return 1
    builders = registry.kinds()
    return builders[kind].dim if kind in builders else None


def _model_tag(doc: Any) -> str:
    return f"<{doc.get('model', 'network')}>" if isinstance(doc, dict) else "<network>"


@functools.cache
def run_schema() -> TypeAdapter:
    """The one run-config schema: a union of the models, discriminated on ``model``."""
    return TypeAdapter(Annotated[Annotated[NetworkRun, Tag("<network>")]
                                 | Annotated[ClifRun, Tag("<clif>")], Discriminator(_model_tag)])


def parse_config(doc: dict[str, Any]) -> RunConfig | CLIFRunConfig:
    """Validate a run config document of any model (see the module docstring)."""
    if not isinstance(doc, dict):
        raise ConfigError("config", f"expected a TOML document, got {type(doc).__name__}")
    model = doc.get("model", "network")
    if not isinstance(model, str) or model not in MODELS:
        raise ConfigError("model", f"unknown value {model!r} (choose from {', '.join(MODELS)})")
    return validate(run_schema(), doc).record(doc)


def parse_run_config(doc: dict[str, Any]) -> RunConfig:
    """Validate a ``model = "network"`` run config document."""
    if isinstance(doc, dict) and doc.get("model", "network") != "network":
        raise ConfigError("model", f"expected \"network\" here, got {doc['model']!r}")
    return parse_config(doc)


def load_run_config(path) -> RunConfig:
    """Read and validate a run config file."""
    return parse_run_config(load_toml(path))


def parse_clif_config(doc: dict) -> CLIFRunConfig:
    """Validate a run config with ``model = "clif"`` (errors name the key)."""
    if not isinstance(doc, dict) or doc.get("model") != "clif":
        got = doc.get("model", "network") if isinstance(doc, dict) else doc
        raise ConfigError("model", f"expected \"clif\" here, got {got!r}")
    return parse_config(doc)
