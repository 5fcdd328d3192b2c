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
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter, model_validator

from coupling.config.clif import ClifRun, CLIFRunConfig
from coupling.config.tables import SEED, EnergySpec
from fem.config import VECTOR_TYPES, MeshTable, ProblemTable
from fem.errors import ConfigError
from fem.parameters import ParametersTable
from fem.schema import (
    MAX_COUNT,
    Positive,
    PositiveInt,
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
SCHEDULES = ("none", "cosine", "step")
DTYPES = ("float32", "float64")
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


# a count of rows/cells (an integer) or a fraction of them (a float in (0, 1))
CountOrFraction = Annotated[
    Annotated[between(0, MAX_COUNT, integer=True), Tag("<count>")]
    | Annotated[Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)], Tag("<fraction>")],
    Discriminator(lambda v: "<fraction>" if isinstance(v, float) else "<count>")]


class LevelSpec(Table):
    """One entry of ``training.levels``: a mesh of the same geometry and its training."""

    table_key: ClassVar[str] = "training.levels[]"

    size: Positive | None = None  # mesh size of this level (the last level is [mesh]: omit)
    steps: PositiveInt | None = None  # steps on this level (the last: training.steps wins)
    batch: CountOrFraction | None = None  # this level's batch (default training.batch)
    lr: Positive | None = None  # this level's learning rate (default training.lr)
    # the network between this level's nodes drawn to their interpolant (see
    # training.consistency_weight); default 1 on the coarse levels, where the next level
    # starts from the network there, and training.consistency_weight on the last
    consistency_weight: between(0.0, 1e6) | None = None


class TrainingSpec(Table):
    """Optimizer, schedule, batching, precision, seed, logging and checkpoint cadence."""

    table_key: ClassVar[str] = "training"

    steps: PositiveInt = 2000  # with levels: the total over them (default: their sum)
    lr: Positive = 1e-3
    optimizer: Literal["adam"] = "adam"
    lbfgs_steps: between(0, MAX_COUNT, integer=True) = 0
    schedule: Literal[SCHEDULES] = "none"
    gamma: Positive = 0.5
    step_size: PositiveInt = 1000
    # rows (sp/autograd) or cells (galerkin: element-sampled energy) per step, or a fraction
    batch: CountOrFraction = 0
    refresh: between(0, MAX_COUNT, integer=True) = 20  # galerkin batches: control variate
    cluster_cells: PositiveInt = 32  # galerkin batches: cells sampled together
    compile: bool = False  # torch.compile the network for the loss (eager fallback)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    threads: PositiveInt | None = None  # torch/BLAS threads per rank (default 1)
    consistency_weight: between(0.0, 1e6) = 0.0  # network vs interpolant inside cells
    activity_weight: between(0.0, 1e6) = 0.0  # λ of the activity regulariser
    activity_target: between(0.0, 1.0) | None = None  # penalise only rates above it
    dtype: Literal[DTYPES] = "float32"
    seed: SEED = 0
    log_every: PositiveInt = 50
    checkpoint_every: PositiveInt = 500
    keep_checkpoints: PositiveInt = 3
    progress: bool = True
    max_memory_gb: Positive | None = None  # raise (or lower) the memory limit of a run
    # coarse to fine (coupling.training.levels): the same geometry meshed at decreasing sizes,
    # one network trained through them; the last level is [mesh] itself
    levels: list[LevelSpec] = []
    # what Adam carries into the next level: nothing ("reset": a fresh Adam) or its moments
    # ("keep": smoother where the gradients keep their scale, too large steps after annealing)
    level_moments: Literal["keep", "reset"] = "reset"
    # the off-node errors (vs FEM inside the cells) in every n-th metrics row of a level
    # (0: in the final measure only)
    offnode_every: between(0, MAX_COUNT, integer=True) = 10
    # the most points the off-node probe evaluates over all ranks (default: every cell's
    # quadrature points; fewer: a fixed sample of the cells, the same on any rank count)
    offnode_points: PositiveInt | None = None

    @model_validator(mode="after")
    def _hierarchy(self) -> TrainingSpec:
        """Levels coarse to fine, each (but the last) with a size and steps; steps, when
        given, is the total over the levels and sets the last level's length."""
        levels = self.levels
        if not levels:
            return self
        if len(levels) < 2:
            raise ConfigError("levels", "expected at least 2 levels (coarse to fine); leave "
                              "it out to train on [mesh] alone")
        for i, lv in enumerate(levels):
            last = i == len(levels) - 1
            if lv.size is None and not last:
                raise ConfigError(f"levels[{i}].size", "missing (every level but the last, "
                                  "which is [mesh], needs its mesh size)")
            if lv.steps is None and not (last and "steps" in self.model_fields_set):
                raise ConfigError(f"levels[{i}].steps", "missing (the last level may leave it "
                                  "to training.steps, the total)")
            for key in ("batch", "consistency_weight"):
                if last and getattr(lv, key) is not None:
                    raise ConfigError(f"levels[{i}].{key}", f"the last level is [mesh], "
                                      f"discretised as training.{key} says: set that instead")
            before = levels[i - 1].size if i else None
            if i and lv.size is not None and not lv.size < before:
                raise ConfigError(f"levels[{i}].size", f"expected below the previous level's "
                                  f"{before} (sizes decrease from coarse to fine), got {lv.size}")
        coarse = sum(lv.steps for lv in levels[:-1])
        if "steps" not in self.model_fields_set:
            self.steps = coarse + levels[-1].steps
        elif self.steps <= coarse:
            raise ConfigError("steps", f"{self.steps} leaves no steps for the last level (the "
                              f"levels before it take {coarse}); training.steps is the total")
        return self

    def check_levels(self, mesh_size: float | None, parametric: bool) -> None:
        """The hierarchy against the run: it ends at [mesh] (one line naming the key)."""
        if not self.levels:
            return
        if parametric:
            raise ConfigError("training.levels", "a parametric run trains on one mesh; "
                              "remove training.levels")
        if mesh_size is None:
            raise ConfigError("mesh.size", "missing (training.levels refines down to it)")
        last, before = self.levels[-1], self.levels[-2].size
        if last.size is not None and last.size != mesh_size:
            raise ConfigError(f"training.levels[{len(self.levels) - 1}].size", f"the last "
                              f"level is [mesh]: leave it out or set mesh.size ({mesh_size}), "
                              f"got {last.size}")
        if not mesh_size < before:
            raise ConfigError(f"training.levels[{len(self.levels) - 2}].size", f"expected above "
                              f"mesh.size {mesh_size} (the last level), got {before}")

    def level_steps(self) -> list[int]:
        """Steps of each level (the last: what training.steps leaves)."""
        coarse = [lv.steps for lv in self.levels[:-1]]
        return [*coarse, self.steps - sum(coarse)]


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
                         self.training, copy.deepcopy(doc), self.inputs, self.parameters)


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
