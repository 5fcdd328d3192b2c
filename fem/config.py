"""The ``[mesh]`` and ``[problem]`` tables of a TOML config, validated into small records.

The coupling config embeds these two tables unchanged, so every function here takes the
table (a dict) plus the key it lives under and raises :class:`ConfigError` naming the
exact key on bad input, e.g. ``config problem.type: unknown value 'poison' (choose from
poisson, ...)``.

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
    [problem.output]           # sample grid for the space-time solution
    points = 101, times = 101
    [problem.solver]
    method = "auto", rtol = 1e-10, lu_max_dofs = 60000
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import expressions
from .errors import ConfigError, FemError
from .expressions import ScalarExpr
from .solvers import LU_MAX_DOFS, SolverSettings

PROBLEM_TYPES = ("poisson", "poisson_boltzmann", "heat", "burgers", "elasticity", "homogenisation")
SCALAR_BC_TYPES = ("dirichlet", "neumann")
VECTOR_BC_TYPES = ("dirichlet", "traction", "pressure", "roller", "affine")
SOLVER_METHODS = ("auto", "lu", "cg")
DEFAULT_THETA = {"heat": 0.5, "burgers": 1.0}

_PROBLEM_KEYS = {
    "type",
    "degree",
    "source",
    "coefficients",
    "materials",
    "kappa",
    "viscosity",
    "exact",
    "bcs",
    "time",
    "output",
    "solver",
    "quadrature_degree",
}


@dataclass(frozen=True)
class MeshSpec:
    """What `meshes.build` gets: kind, size and builder options."""

    kind: str
    size: float | None
    options: dict[str, Any]

    def build(self, comm=None):
        """Build the distributed mesh (collective)."""
        import meshes
        from meshes._dolfinx import MPI

        kwargs = dict(self.options)
        if self.size is not None:
            kwargs["size"] = self.size
        comm = comm or MPI.COMM_WORLD
        if self.kind == "interval":
            from .interval import interval

            bad = sorted(set(kwargs) - {"size", "x0", "x1"})
            if bad:
                raise ConfigError(
                    f"mesh.{bad[0]}", "unknown option for kind 'interval' (allowed: size, x0, x1)"
                )
            return interval(comm=comm, **kwargs)
        return meshes.build(self.kind, comm=comm, **kwargs)


@dataclass
class BoundarySpec:
    """One boundary condition on a named facet group."""

    boundary: str
    type: str
    value: list[ScalarExpr] | None = None  # one entry for scalar problems / pressure / roller
    component: int | None = None
    strain: list[list[float]] | None = None
    key: str = "problem.bcs"


@dataclass
class TimeSpec:
    """θ-scheme time stepping on [0, t_end] with step dt."""

    t_end: float
    dt: float
    theta: float
    initial: ScalarExpr

    @property
    def steps(self) -> int:
        return int(round(self.t_end / self.dt))


@dataclass
class ProblemSpec:
    """A validated ``[problem]`` table."""

    type: str
    degree: int = 1
    source: list[ScalarExpr] = field(default_factory=list)  # empty: zero
    coefficients: dict[str, float] | float = 1.0
    materials: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (E, nu)
    kappa: float = 0.0
    viscosity: float = 0.0
    exact: list[ScalarExpr] | None = None
    bcs: list[BoundarySpec] = field(default_factory=list)
    time: TimeSpec | None = None
    output_points: int = 101
    output_times: int = 101
    solver: SolverSettings = field(default_factory=SolverSettings)
    quadrature_degree: int | None = None
    raw: dict = field(default_factory=dict)  # the table as given (hash key, summary)

    @property
    def vector(self) -> bool:
        return self.type in ("elasticity", "homogenisation")

    def digest(self) -> str:
        """A stable hash of the problem table (cache keys)."""
        return hashlib.sha256(
            json.dumps(self.raw, sort_keys=True, default=str).encode()
        ).hexdigest()


def load_toml(path: str | Path) -> dict:
    """Read a TOML file; a missing or malformed file is a FemError naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise FemError(f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise FemError(f"config file {str(path)!r}: {exc}") from None


def require_table(doc: dict, key: str) -> dict:
    """`doc[key]` as a table, or a ConfigError naming `key`."""
    if key not in doc:
        raise ConfigError(key, "missing table")
    if not isinstance(doc[key], dict):
        raise ConfigError(key, f"expected a table, got {doc[key]!r}")
    return doc[key]


def parse_mesh(table: dict, key: str = "mesh") -> MeshSpec:
    """Validate a ``[mesh]`` table: kind (required), size (optional), the rest are options."""
    if not isinstance(table, dict):
        raise ConfigError(key, f"expected a table, got {table!r}")
    if "kind" not in table:
        raise ConfigError(f"{key}.kind", 'missing (e.g. kind = "plate_with_holes")')
    kind = table["kind"]
    if not isinstance(kind, str):
        raise ConfigError(f"{key}.kind", f"expected a string, got {kind!r}")
    size = table.get("size")
    if size is not None and (not _is_number(size) or size <= 0):
        raise ConfigError(f"{key}.size", f"expected a positive number, got {size!r}")
    options = dict(table.get("options", {}))
    if not isinstance(table.get("options", {}), dict):
        raise ConfigError(f"{key}.options", "expected a table")
    options.update({k: v for k, v in table.items() if k not in ("kind", "size", "options")})
    return MeshSpec(kind, None if size is None else float(size), options)


def parse_problem(table: dict, key: str = "problem") -> ProblemSpec:
    """Validate a ``[problem]`` table (see the module docstring for its keys)."""
    if not isinstance(table, dict):
        raise ConfigError(key, f"expected a table, got {table!r}")
    unknown = sorted(set(table) - _PROBLEM_KEYS)
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(_PROBLEM_KEYS))})"
        )
    ptype = table.get("type")
    if ptype is None:
        raise ConfigError(f"{key}.type", f"missing (choose from {', '.join(PROBLEM_TYPES)})")
    if ptype not in PROBLEM_TYPES:
        raise ConfigError(
            f"{key}.type", f"unknown value {ptype!r} (choose from {', '.join(PROBLEM_TYPES)})"
        )
    spec = ProblemSpec(type=ptype, raw=json.loads(json.dumps(table, default=str)))
    degree = table.get("degree", 1)
    if not isinstance(degree, int) or isinstance(degree, bool) or degree not in (1, 2, 3):
        raise ConfigError(f"{key}.degree", f"expected 1, 2 or 3, got {degree!r}")
    spec.degree = degree
    qd = table.get("quadrature_degree")
    if qd is not None and (not isinstance(qd, int) or qd < 1):
        raise ConfigError(f"{key}.quadrature_degree", f"expected a positive integer, got {qd!r}")
    spec.quadrature_degree = qd

    if spec.vector:
        spec.materials = _parse_materials(table.get("materials"), f"{key}.materials")
        if ptype == "elasticity" and "source" in table:
            spec.source = _exprs(table["source"], f"{key}.source", vector=True)
    else:
        if "source" in table:
            spec.source = _exprs(table["source"], f"{key}.source", vector=False)
        spec.coefficients = _parse_coefficients(
            table.get("coefficients", 1.0), f"{key}.coefficients"
        )
    if "exact" in table:
        spec.exact = _exprs(table["exact"], f"{key}.exact", vector=spec.vector)
    if ptype == "poisson_boltzmann":
        spec.kappa = _positive(table.get("kappa"), f"{key}.kappa", allow_zero=True)
    if ptype == "burgers":
        spec.viscosity = _positive(table.get("viscosity"), f"{key}.viscosity")
    if ptype in ("heat", "burgers"):
        spec.time = _parse_time(table.get("time"), f"{key}.time", DEFAULT_THETA[ptype])
        out = table.get("output", {})
        if not isinstance(out, dict):
            raise ConfigError(f"{key}.output", "expected a table")
        for name in ("points", "times"):
            n = out.get(name, 101)
            if not isinstance(n, int) or isinstance(n, bool) or n < 2:
                raise ConfigError(f"{key}.output.{name}", f"expected an integer >= 2, got {n!r}")
            setattr(spec, f"output_{name}", n)
    spec.bcs = _parse_bcs(table.get("bcs", []), f"{key}.bcs", spec)
    spec.solver = _parse_solver(table.get("solver", {}), f"{key}.solver")
    return spec


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive(v, key: str, allow_zero: bool = False) -> float:
    if v is None:
        raise ConfigError(key, "missing (a positive number)")
    if not _is_number(v) or v < 0 or (v == 0 and not allow_zero):
        raise ConfigError(
            key, f"expected a {'non-negative' if allow_zero else 'positive'} number, got {v!r}"
        )
    return float(v)


def _exprs(value, key: str, vector: bool) -> list[ScalarExpr]:
    try:
        if vector:
            if not isinstance(value, list) or len(value) not in (1, 2, 3):
                raise FemError(f"expected a list of 2 or 3 numbers/expressions, got {value!r}")
            return [expressions.parse(v, key) for v in value]
        return [expressions.parse(value, key)]
    except FemError as exc:
        raise ConfigError(key, str(exc).removeprefix(f"{key}: ")) from None


def _parse_coefficients(value, key: str) -> dict[str, float] | float:
    if _is_number(value):
        if value <= 0:
            raise ConfigError(key, f"expected a positive number, got {value!r}")
        return float(value)
    if not isinstance(value, dict) or not value:
        raise ConfigError(key, f"expected a number or a table {{phase = value}}, got {value!r}")
    for name, v in value.items():
        if not _is_number(v) or v <= 0:
            raise ConfigError(f"{key}.{name}", f"expected a positive number, got {v!r}")
    return {k: float(v) for k, v in value.items()}


def _parse_materials(value, key: str) -> dict[str, tuple[float, float]]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(key, "missing: a table {phase = {E = ..., nu = ...}}")
    out = {}
    for name, m in value.items():
        if not isinstance(m, dict):
            raise ConfigError(f"{key}.{name}", f"expected a table {{E = ..., nu = ...}}, got {m!r}")
        for p in m:
            if p not in ("E", "nu"):
                raise ConfigError(f"{key}.{name}.{p}", "unknown key (allowed: E, nu)")
        E = _positive(m.get("E"), f"{key}.{name}.E")
        nu = m.get("nu")
        if not _is_number(nu) or not -1.0 < nu < 0.5:
            raise ConfigError(f"{key}.{name}.nu", f"expected a number in (-1, 0.5), got {nu!r}")
        out[name] = (E, float(nu))
    return out


def _parse_time(value, key: str, default_theta: float) -> TimeSpec:
    if not isinstance(value, dict):
        raise ConfigError(key, "missing table (t_end, dt, theta, initial)")
    t_end = _positive(value.get("t_end"), f"{key}.t_end")
    dt = _positive(value.get("dt"), f"{key}.dt")
    steps = t_end / dt
    if abs(steps - round(steps)) > 1e-9 * steps:
        raise ConfigError(f"{key}.dt", f"t_end/dt = {steps:g} is not an integer")
    theta = value.get("theta", default_theta)
    if not _is_number(theta) or not 0.0 <= theta <= 1.0:
        raise ConfigError(f"{key}.theta", f"expected a number in [0, 1], got {theta!r}")
    initial = _exprs(value.get("initial", 0.0), f"{key}.initial", vector=False)[0]
    return TimeSpec(t_end, dt, float(theta), initial)


def _parse_bcs(value, key: str, spec: ProblemSpec) -> list[BoundarySpec]:
    if not isinstance(value, list):
        raise ConfigError(key, "expected an array of tables [[problem.bcs]]")
    allowed = VECTOR_BC_TYPES if spec.vector else SCALAR_BC_TYPES
    out = []
    for i, bc in enumerate(value):
        k = f"{key}[{i}]"
        if not isinstance(bc, dict):
            raise ConfigError(k, f"expected a table, got {bc!r}")
        extra = sorted(set(bc) - {"boundary", "type", "value", "component", "strain"})
        if extra:
            raise ConfigError(
                f"{k}.{extra[0]}", "unknown key (allowed: boundary, type, value, component, strain)"
            )
        name = bc.get("boundary")
        if not isinstance(name, str):
            raise ConfigError(f"{k}.boundary", f"expected a facet-group name, got {name!r}")
        btype = bc.get("type")
        if btype not in allowed:
            raise ConfigError(
                f"{k}.type", f"unknown value {btype!r} (choose from {', '.join(allowed)})"
            )
        b = BoundarySpec(name, btype, key=k)
        if btype == "affine":
            b.strain = _parse_strain(bc.get("strain"), f"{k}.strain")
        elif btype in ("dirichlet", "traction") and spec.vector:
            v = bc.get("value", 0.0)
            if _is_number(v) and v == 0:
                v = [0.0, 0.0, 0.0]
            b.value = _exprs(v, f"{k}.value", vector=True)
        else:
            if btype == "roller":
                c = bc.get("component")
                if c not in (0, 1, 2) or isinstance(c, bool):
                    raise ConfigError(f"{k}.component", f"expected 0, 1 or 2, got {c!r}")
                b.component = c
            if "value" not in bc and btype not in ("roller",):
                raise ConfigError(f"{k}.value", "missing")
            b.value = _exprs(bc.get("value", 0.0), f"{k}.value", vector=False)
        out.append(b)
    return out


def _parse_strain(value, key: str) -> list[list[float]]:
    """A 3x3 symmetric strain, or 6 Voigt components [e11, e22, e33, g23, g13, g12]."""
    if isinstance(value, list) and len(value) == 6 and all(_is_number(v) for v in value):
        e11, e22, e33, g23, g13, g12 = map(float, value)
        return [[e11, g12 / 2, g13 / 2], [g12 / 2, e22, g23 / 2], [g13 / 2, g23 / 2, e33]]
    if (
        isinstance(value, list)
        and len(value) in (2, 3)
        and all(
            isinstance(r, list) and len(r) == len(value) and all(map(_is_number, r)) for r in value
        )
    ):
        return [[float(v) for v in r] for r in value]
    raise ConfigError(key, f"expected a 3x3 (or 2x2) matrix or 6 Voigt values, got {value!r}")


def _parse_solver(value, key: str) -> SolverSettings:
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a table")
    extra = sorted(set(value) - {"method", "rtol", "atol", "max_it", "lu_max_dofs", "petsc"})
    if extra:
        raise ConfigError(
            f"{key}.{extra[0]}",
            "unknown key (allowed: method, rtol, atol, max_it, lu_max_dofs, petsc)",
        )
    method = value.get("method", "auto")
    if method not in SOLVER_METHODS:
        raise ConfigError(
            f"{key}.method", f"unknown value {method!r} (choose from {', '.join(SOLVER_METHODS)})"
        )
    s = SolverSettings(method=method)
    for name in ("rtol", "atol"):
        if name in value:
            setattr(s, name, _positive(value[name], f"{key}.{name}"))
    for name, default in (("max_it", 2000), ("lu_max_dofs", LU_MAX_DOFS)):
        v = value.get(name, default)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{key}.{name}", f"expected a positive integer, got {v!r}")
        setattr(s, name, v)
    petsc = value.get("petsc", {})
    if not isinstance(petsc, dict):
        raise ConfigError(f"{key}.petsc", "expected a table of PETSc options")
    s.extra = dict(petsc)
    return s
