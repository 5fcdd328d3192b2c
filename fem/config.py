"""The ``[mesh]`` and ``[problem]`` tables of a TOML config: pydantic schema and records.

One pydantic model per table (:mod:`fem.schema`: unknown keys refused, strict types,
finite numbers in range), checked once before any mesh or FEM work and then the record the
solvers read (:class:`MeshTable`, :class:`ProblemTable` with :class:`BCTable`, ...);
``coupling.config`` embeds both. Errors name the key: ``config problem.degree: ...``.

Problem table::

    [problem]
    type = "poisson"           # poisson | poisson_boltzmann | heat | burgers |
                               # elasticity | homogenisation
    degree = 1                 # Lagrange degree, 1 or 2 (3 allowed)
    source = "sin(pi*x)"       # f: number or expression in x, y, z (t); a list for elasticity
    coefficients = {domain = 1.0}          # k per phase (cell-group name), or one number
    materials = {matrix = {E = 1.0, nu = 0.35}}   # elasticity / homogenisation, per phase
    kappa = 1.0                # poisson_boltzmann
    viscosity = 0.01           # burgers
    exact = "..."              # optional exact solution: its L2 error goes into the summary
    [[problem.bcs]]
    boundary = "x0"            # facet-group name, or "*" for every exterior facet
    type = "dirichlet"         # dirichlet | neumann | traction | pressure | roller | affine
    value = 0.0                # number / expression / list (vector problems)
    component = 0              # roller only
    strain = [[...]]           # affine only: the macroscopic strain (3x3 or Voigt 6)
    [problem.time]             # heat / burgers
    t_end = 1.0, dt = 0.01, theta = 0.5, initial = "0"
    [problem.output]           # sample grid for the space-time solution: points = 101, times = 101
    [problem.solver]           # method = "auto", rtol = 1e-10, lu_max_dofs = 60000

The ``[mesh]`` table holds ``kind``, an optional ``size`` and the builder's options (as
keys of the table or in ``options = {...}``), checked against the option table of
:mod:`meshes.registry` (``kind = "interval"``: ``x0``, ``x1``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from meshes.errors import MeshError
from meshes.fenics import MPI

from . import expressions
from .cache import default_store
from .errors import ConfigError
from .expressions import ScalarExpr
from .schema import (
    NonNegative,
    Positive,
    PositiveInt,
    Table,
    between,
    finite,
    number_or_table,
    validate,
)
from .schema import load_toml as load_toml  # part of this module's API
from .schema import require_table as require_table
from .solvers import LU_MAX_DOFS, SolverSettings, check_petsc_options

PROBLEM_TYPES = ("poisson", "poisson_boltzmann", "heat", "burgers", "elasticity", "homogenisation")
VECTOR_TYPES = ("elasticity", "homogenisation")
SCALAR_BC_TYPES = ("dirichlet", "neumann")
VECTOR_BC_TYPES = ("dirichlet", "traction", "pressure", "roller", "affine")
SOLVER_METHODS = ("auto", "lu", "cg")
DEFAULT_THETA = {"heat": 0.5, "burgers": 1.0}
MAX_TIME_STEPS = 10**7


def _exprs(value: Any, many: bool = True) -> list[ScalarExpr]:
    """A number/expression (or, with `many`, a list of them) as a list of ScalarExpr."""
    if many and isinstance(value, list):
        return [expressions.parse(v, f"[{i}]") for i, v in enumerate(value)]
    return [expressions.parse(value, "")]


Exprs = Annotated[list[ScalarExpr], BeforeValidator(_exprs)]
Expr = Annotated[ScalarExpr, BeforeValidator(lambda v: _exprs(v, many=False)[0])]


def _strain(value: Any) -> list[list[float]]:
    """A 3x3 (or 2x2) strain matrix, or 6 Voigt values [e11, e22, e33, g23, g13, g12]."""
    flat = value if isinstance(value, list) else []
    if len(flat) == 6 and all(finite(v) for v in flat):
        e11, e22, e33, g23, g13, g12 = map(float, flat)
        return [[e11, g12 / 2, g13 / 2], [g12 / 2, e22, g23 / 2], [g13 / 2, g23 / 2, e33]]
    if len(flat) in (2, 3) and all(isinstance(r, list) and len(r) == len(flat)
                                   and all(map(finite, r)) for r in flat):
        return [[float(v) for v in r] for r in flat]
    raise ConfigError("", f"expected a 3x3 (or 2x2) matrix or 6 Voigt values, got {value!r}")


class MaterialTable(Table):
    """Isotropic linear elasticity of one phase; unpacks as ``E, nu = material``."""

    E: Positive
    nu: Annotated[float, Field(gt=-1.0, lt=0.5, allow_inf_nan=False)]

    def __iter__(self):  # (E, ν): what lame(), bulk_shear() and the bounds take
        return iter((self.E, self.nu))


class BCTable(Table):
    """One ``[[problem.bcs]]`` entry (value, component, strain: only where its type uses them)."""

    boundary: str
    type: Literal[VECTOR_BC_TYPES + ("neumann",)]
    value: Exprs | None = None  # one entry for scalar problems / pressure / roller
    component: between(0, 2, integer=True) | None = None
    strain: Annotated[list[list[float]], BeforeValidator(_strain)] | None = None
    _key: str = PrivateAttr("problem.bcs")

    @property
    def key(self) -> str:
        """The entry's dotted key (``problem.bcs[1]``), for errors found with the mesh."""
        return self._key


class TimeTable(Table):
    """θ-scheme time stepping on [0, t_end] with step dt (θ: the problem type's default
    unless given, filled in by :class:`ProblemTable`)."""

    t_end: Positive
    dt: Positive
    theta: between(0.0, 1.0) | None = None
    initial: Expr = Field(default=0.0, validate_default=True)

    @property
    def steps(self) -> int:
        """The number of time steps."""
        return int(round(self.t_end / self.dt))

    @model_validator(mode="after")
    def _whole_steps(self) -> TimeTable:
        steps = self.t_end / self.dt
        if abs(steps - round(steps)) > 1e-9 * steps:
            raise ConfigError("dt", f"t_end/dt = {steps:g} is not an integer")
        if steps > MAX_TIME_STEPS:
            raise ConfigError("dt", f"t_end/dt = {steps:g} steps, over {MAX_TIME_STEPS}")
        return self


class OutputTable(Table):
    """Sample grid of a space-time solution."""

    points: between(2, 10**5, integer=True) = 101
    times: between(2, 10**5, integer=True) = 101


class SolverTable(Table):
    """Linear solver settings (fem.solvers.SolverSettings)."""

    method: Literal[SOLVER_METHODS] = "auto"
    rtol: Positive = SolverSettings.rtol
    atol: Positive = SolverSettings.atol
    max_it: PositiveInt = SolverSettings.max_it
    lu_max_dofs: PositiveInt = LU_MAX_DOFS
    petsc: Annotated[dict[str, Any], AfterValidator(check_petsc_options)] = {}  # allowlist

    def settings(self) -> SolverSettings:
        """These settings as fem.solvers' record (what a LinearSolver takes)."""
        return SolverSettings(self.method, self.rtol, self.atol, self.max_it, self.lu_max_dofs,
                              dict(self.petsc))

    def resolve(self, global_dofs: int) -> str:
        """The concrete method ("lu" or "cg") for a system with this many dofs."""
        return self.settings().resolve(global_dofs)

    def petsc_options(self, global_dofs: int) -> dict:
        """PETSc KSP options for this system size."""
        return self.settings().petsc_options(global_dofs)


class ProblemTable(Table):
    """The ``[problem]`` table, validated once: the record every solver, residual and cache
    key reads, its type-dependent defaults filled in by :meth:`_defaults`."""

    type: Literal[PROBLEM_TYPES]
    degree: between(1, 3, integer=True) = 1
    source: Exprs = []  # empty: zero
    coefficients: number_or_table(
        Positive, Annotated[dict[str, Positive], Field(min_length=1)]) = 1.0
    materials: Annotated[dict[str, MaterialTable], Field(min_length=1)] | None = None
    kappa: NonNegative | None = None
    viscosity: Positive | None = None
    exact: Exprs | None = None
    bcs: list[BCTable] = []
    time: TimeTable | None = None
    output: OutputTable = OutputTable()
    solver: SolverTable = SolverTable()
    quadrature_degree: between(1, 20, integer=True) | None = None
    _raw: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_raw(cls, data: Any, handler: Any) -> ProblemTable:
        """The table as given (JSON-normalised), kept for the cache key and the summary."""
        table = handler(data)
        if isinstance(data, dict):
            table._raw = json.loads(json.dumps(data, default=str))
        return table

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        """Scalar problems take one value per field, vector problems a list of 1 to 3."""
        if not isinstance(data, dict):
            return data
        vector = data.get("type") in VECTOR_TYPES
        for name in ("source", "exact"):
            if name in data:
                _check_shape(data[name], vector, name)
        bcs = data.get("bcs")
        if isinstance(bcs, list):
            bcs = [dict(bc) if isinstance(bc, dict) else bc for bc in bcs]
            for i, bc in enumerate(bcs):
                if not isinstance(bc, dict):
                    continue
                listed = vector and bc.get("type") in ("dirichlet", "traction")
                if listed and finite(bc.get("value", 0.0)) and bc.get("value", 0.0) == 0:
                    bc["value"] = [0.0, 0.0, 0.0]  # the zero vector
                if "value" in bc:
                    _check_shape(bc["value"], listed, f"bcs[{i}].value")
            data = {**data, "bcs": bcs}
        return data

    @model_validator(mode="after")
    def _requirements(self) -> ProblemTable:
        vector = self.type in VECTOR_TYPES
        needs = {"materials": vector, "kappa": self.type == "poisson_boltzmann",
                 "viscosity": self.type == "burgers", "time": self.type in DEFAULT_THETA}
        what = {"materials": "a table {phase = {E = ..., nu = ...}}",
                "kappa": "a non-negative number", "viscosity": "a positive number",
                "time": "a table (t_end, dt, theta, initial)"}
        for name, needed in needs.items():
            if needed and getattr(self, name) is None:
                raise ConfigError(name, f"missing: {what[name]}")
        allowed = VECTOR_BC_TYPES if vector else SCALAR_BC_TYPES
        for i, bc in enumerate(self.bcs):
            k = f"bcs[{i}]"
            if bc.type not in allowed:
                raise ConfigError(f"{k}.type", f"unknown value {bc.type!r} for a "
                                  f"{'vector' if vector else 'scalar'} problem (choose from "
                                  f"{', '.join(allowed)})")
            if bc.type == "affine" and bc.strain is None:
                raise ConfigError(f"{k}.strain", "missing: the macroscopic strain")
            if bc.type == "roller" and bc.component is None:
                raise ConfigError(f"{k}.component", "missing: 0, 1 or 2")
            if bc.type not in ("roller", "affine") and bc.value is None:
                raise ConfigError(f"{k}.value", "missing")
        return self

    @model_validator(mode="after")
    def _defaults(self) -> ProblemTable:
        """The one place the type-dependent defaults are filled in (see the class docstring)."""
        if self.type in VECTOR_TYPES:
            self.coefficients = 1.0
        else:
            self.materials = {}
        if self.type == "homogenisation":
            self.source = []
        if self.type != "poisson_boltzmann":
            self.kappa = 0.0
        if self.type not in DEFAULT_THETA:
            self.time = None
        elif self.time.theta is None:
            self.time.theta = DEFAULT_THETA[self.type]
        for i, bc in enumerate(self.bcs):
            if bc.type == "affine" or (bc.type == "roller" and bc.value is None):
                bc.value = None if bc.type == "affine" else [expressions.parse(0.0)]
            bc.component = bc.component if bc.type == "roller" else None
            bc.strain = bc.strain if bc.type == "affine" else None
            bc._key = f"problem.bcs[{i}]"
        return self

    @property
    def vector(self) -> bool:
        return self.type in VECTOR_TYPES

    @property
    def raw(self) -> dict:
        """The table as given (JSON-normalised: the cache key and the run summary)."""
        return self._raw

    output_points = property(lambda self: self.output.points)  # space-time sample grid
    output_times = property(lambda self: self.output.times)

    def digest(self) -> str:
        """A stable hash of the problem table (cache keys)."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True).encode()).hexdigest()

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> ProblemTable:
        """A copy with `update` applied to the table and to :attr:`raw` (its cache key)."""
        out = super().model_copy(update=update, deep=deep)
        out._raw = json.loads(json.dumps({**self._raw, **(update or {})}, default=_plain))
        return out


def _plain(v: Any) -> Any:
    """A table entry as JSON: a table's keys, an expression's text."""
    return v.model_dump() if isinstance(v, BaseModel) else getattr(v, "text", str(v))


def _check_shape(value: Any, listed: bool, key: str) -> None:
    if listed and not (isinstance(value, list) and 1 <= len(value) <= 3):
        raise ConfigError(key, f"expected a list of 2 or 3 numbers/expressions, got {value!r}")
    if not listed and isinstance(value, list):
        raise ConfigError(key, f"expected one number or expression, got {value!r}")


class RefineInterfacesTable(Table):
    """``refine_interfaces = {size, width}``: mesh size at inclusion surfaces, graded over width."""
    size: Positive
    width: Positive


class MeshTable(BaseModel):
    """The ``[mesh]`` table: kind, size and the builder's options (checked against its table);
    ``refine_interfaces`` fills the builder's ``interface_size`` / ``interface_width``."""

    model_config = ConfigDict(extra="allow", strict=True)

    kind: str
    size: Positive | None = None
    options: dict[str, Any] = {}
    refine_interfaces: RefineInterfacesTable | None = None

    @model_validator(mode="after")
    def _options(self) -> MeshTable:
        import meshes.registry as registry  # deferred: loads Gmsh

        given = {**self.options, **(self.model_extra or {})}
        if self.kind == "interval":
            for name, v in given.items():
                if name not in ("x0", "x1"):
                    raise ConfigError(name, "unknown option for kind 'interval' (allowed: "
                                      "size, x0, x1)")
                if not finite(v):
                    raise ConfigError(name, f"expected a finite number, got {v!r}")
            if not given.get("x1", 1.0) > given.get("x0", 0.0):
                raise ConfigError("x1", f"must exceed x0 = {given.get('x0', 0.0)}")
            self.options = given
            return self
        kinds = registry.kinds()
        if self.kind not in kinds:
            raise ConfigError("kind", f"unknown value {self.kind!r} (choose from "
                              f"{', '.join(sorted([*kinds, 'interval']))})")
        if self.refine_interfaces is not None:  # → the builder's interface_size / _width
            if "interface_size" not in {o.name for o in kinds[self.kind].options} or \
                    {"interface_size", "interface_width"} & set(given):
                raise ConfigError("refine_interfaces", f"kind {self.kind!r} has no inclusion "
                                  "interfaces (kinds: rve), or interface_size/_width also given")
            given.update(interface_size=self.refine_interfaces.size,
                         interface_width=self.refine_interfaces.width)
        for name, value in given.items():
            where = f"options.{name}" if name in self.options else name
            try:
                registry.resolve(self.kind, self.size, {name: value})
            except MeshError as exc:
                raise ConfigError(where, str(exc)) from None
            if name == "seed" and not (isinstance(value, int) and 0 <= value < 2**32):
                raise ConfigError(where, f"expected an integer in [0, 2**32), got {value!r}")
        self.options = given  # the builder's options, from [mesh] or [mesh.options] alike
        return self

    def build(self, comm=None):
        """Build the distributed mesh (collective), reusing the user mesh cache (fem.cache)."""
        import meshes  # deferred: gmsh and DOLFINx only when a mesh is built

        kwargs = dict(self.options)
        if self.size is not None:
            kwargs["size"] = self.size
        comm = comm or MPI.COMM_WORLD
        if self.kind == "interval":
            from .interval import interval  # deferred: loads Gmsh

            return interval(comm=comm, **kwargs)
        return meshes.build(self.kind, comm=comm, cache=default_store(), **kwargs)


def parse_mesh(table: dict, key: str = "mesh") -> MeshTable:
    """Validate a ``[mesh]`` table: kind (required), size (optional), the rest are options."""
    return validate(MeshTable, table, key)


def parse_problem(table: dict, key: str = "problem") -> ProblemTable:
    """Validate a ``[problem]`` table (see the module docstring for its keys)."""
    return validate(ProblemTable, table, key)
