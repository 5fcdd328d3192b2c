"""Pieces every problem uses: phase-wise coefficients, named boundaries, Dirichlet data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import dolfinx, ufl

from ..errors import ConfigError
from ..expressions import ScalarExpr

ALL_BOUNDARY = "*"  # boundary name meaning "every exterior facet"


class BuiltinProblem:
    """Base of the problems built from a ``[problem]`` spec: their name is the spec's type."""

    vector = False
    spec: object  # fem.config.ProblemTable

    @property
    def name(self) -> str:
        """The problem type (its config name)."""
        return self.spec.type

    @property
    def strong_form(self) -> object:
        """The spec's coefficients, source and boundary data (strong-form residuals read it)."""
        return self.spec


@dataclass
class SpaceTimeSeries:
    """A time-dependent solution sampled at fixed points: values[time, point(, component)]."""

    times: np.ndarray  # (nt,)
    points: np.ndarray  # (np, 3); outside the domain -> values NaN
    values: np.ndarray  # (nt, np) or (nt, np, bs)


@dataclass
class Solution:
    """A solved problem: the field(s), solver statistics and problem-specific results."""

    u: dolfinx.fem.Function
    info: dict
    problem: object
    fields: dict[str, dolfinx.fem.Function] = field(default_factory=dict)  # extra named fields
    series: SpaceTimeSeries | None = None
    results: dict = field(default_factory=dict)  # e.g. homogenised stiffness


def phase_field(
    dmesh: DistributedMesh, values: dict[str, float] | float, key: str, name: str = "k"
) -> dolfinx.fem.Function | float:
    """A piecewise-constant (DG0) coefficient from {phase name: value}; a number stays a number."""
    if not isinstance(values, dict):
        return float(values)
    unknown = [n for n in values if n not in dmesh.cell_names]
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}",
            f"no cell group {unknown[0]!r} in this mesh (it has {sorted(dmesh.cell_names)})",
        )
    Q = dolfinx.fem.functionspace(dmesh.mesh, ("DG", 0))
    f = dolfinx.fem.Function(Q, name=name)
    f.x.array[:] = np.nan
    for phase, v in values.items():
        f.x.array[dmesh.cells(phase)] = v
    n_local = dmesh.mesh.topology.index_map(dmesh.tdim).size_local
    missing = int(np.isnan(f.x.array[:n_local]).sum())
    missing = dmesh.comm.allreduce(missing)
    if missing:
        raise ConfigError(
            key,
            f"{missing} cells belong to no listed phase "
            f"(phases of this mesh: {sorted(dmesh.cell_names)})",
        )
    f.x.scatter_forward()
    return f


def boundary_facets(dmesh: DistributedMesh, name: str, key: str) -> np.ndarray:
    """Local facet indices of boundary `name` ("*" = all exterior facets)."""
    if name == ALL_BOUNDARY:
        return dolfinx.mesh.exterior_facet_indices(dmesh.mesh.topology)
    if name not in dmesh.facet_names:
        raise ConfigError(
            f"{key}.boundary",
            f"no facet group {name!r} in this mesh (it has {sorted(dmesh.facet_names)})",
        )
    return dmesh.facets(name)


def facet_measure(dmesh: DistributedMesh, name: str, key: str, metadata=None) -> ufl.Measure:
    """The surface measure ds restricted to boundary `name`."""
    mesh = dmesh.mesh
    if name == ALL_BOUNDARY:
        return ufl.Measure("ds", domain=mesh, metadata=metadata)
    boundary_facets(dmesh, name, key)  # validates the name
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=dmesh.facet_tags, metadata=metadata)
    return ds(dmesh.facet_names[name])


def dirichlet(
    V: dolfinx.fem.FunctionSpace,
    dmesh: DistributedMesh,
    name: str,
    key: str,
    values: list[ScalarExpr] | None = None,
    component: int | None = None,
    func=None,
) -> tuple[dolfinx.fem.DirichletBC, dolfinx.fem.Function, object]:
    """A Dirichlet condition on boundary `name` for V (or its `component`).

    Values come from expressions (re-interpolated by the returned updater at time t) or
    from `func(x)` (points (3, n) -> values). Returns (bc, value function, updater).
    """
    fdim = dmesh.tdim - 1
    facets = boundary_facets(dmesh, name, key)
    if component is None:
        W = V
        dofs = dolfinx.fem.locate_dofs_topological(V, fdim, facets)
    else:
        if V.dofmap.index_map_bs <= component:
            raise ConfigError(
                f"{key}.component",
                f"{component} out of range for a {V.dofmap.index_map_bs}-component field",
            )
        W = V.sub(component).collapse()[0]
        dofs = dolfinx.fem.locate_dofs_topological((V.sub(component), W), fdim, facets)
    g = dolfinx.fem.Function(W)
    bs = W.dofmap.index_map_bs

    def update(t: float = 0.0) -> None:
        if func is not None:
            g.interpolate(func)
        elif bs == 1:
            g.interpolate(values[0].numpy(t))
        else:
            fs = [e.numpy(t) for e in values[:bs]]
            g.interpolate(lambda x: np.stack([f(x) for f in fs]))

    if values is not None and bs > 1 and len(values) < bs:
        raise ConfigError(f"{key}.value", f"expected {bs} components, got {len(values)}")
    update(0.0)
    bc = (
        dolfinx.fem.dirichletbc(g, dofs)
        if component is None
        else dolfinx.fem.dirichletbc(g, dofs, V.sub(component))
    )
    return bc, g, update


def source_term(spec_source: list[ScalarExpr], mesh, t=None, dim: int | None = None):
    """The UFL source: 0 if empty, a scalar, or a vector of `dim` components."""
    # an empty source is a zero Constant (a literal 0 would make the load form empty)
    def term(e: ScalarExpr):
        if e.is_constant:  # UFL folds a literal 0 away and the form would become empty
            return dolfinx.fem.Constant(mesh, float(e.numpy()(np.zeros((3, 1)))[0]))
        return e.ufl(mesh, t)

    if dim is None:
        return term(spec_source[0]) if spec_source else dolfinx.fem.Constant(mesh, 0.0)
    if not spec_source:
        return dolfinx.fem.Constant(mesh, np.zeros(dim))
    comps = [term(e) for e in spec_source]
    comps += [0.0] * (dim - len(comps))
    return ufl.as_vector(comps[:dim])


def require_dimension(dmesh: DistributedMesh, allowed: tuple[int, ...], what: str) -> None:
    """Raise a ConfigError naming mesh.kind when the mesh dimension does not fit."""
    if dmesh.tdim not in allowed:
        raise ConfigError(
            "mesh.kind",
            f"{what} needs a mesh of dimension {' or '.join(map(str, allowed))}, got {dmesh.tdim}D",
        )
