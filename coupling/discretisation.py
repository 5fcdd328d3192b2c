"""From a run config and a mesh to torch data: the residual estimator and the error probe.

Everything comes from DOLFINx on this rank's owned part of the mesh (see
:mod:`fem.operators` and :mod:`fem.data`): the assembled K, M, b with Dirichlet data,
node coordinates (owned, ghosts, extra couplings), volume and boundary quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import fem.data
from fem.errors import ConfigError
from fem.mpi import fetch_from_owners
from fem.operators import Operators, assemble_operators, assemble_owned_vector, to_torch_csr
from fem.problems import Problem
from meshes import DistributedMesh
from meshes.core import bounding_box
from meshes.fenics import MPI, dolfinx, ufl

from . import sp
from .boundary import BoundaryValues, dirichlet_boundaries, distance_and_lift_specs, normalised
from .elements import ElementGalerkinEnergy
from .measure import Measured
from .residuals import (
    AutogradResidual,
    GalerkinEnergy,
    NeumannTerm,
    Residual,
    SoftDirichlet,
    SparseOperator,
    SPResidual,
)
from .spacetime import SpaceTimeDiscretisation


@dataclass
class Discretisation(Measured):
    """A problem made trainable: the residual plus what measures the network against FEM.

    ``loss``/``batch_size``/``measure`` make it a :class:`coupling.loop.Trainable`;
    ``to_function`` turns a trained network back into a DOLFINx function on the problem's
    space (Dirichlet data imposed), which :func:`validation.compare` takes.
    """

    residual: Residual
    x_nodes: torch.Tensor  # (n_function_nodes, in_dim) network inputs at V's local dof nodes
    boundary: BoundaryValues  # the boundary map restricted to V's local dofs
    weights: torch.Tensor  # (n_owned,) lumped-mass weights of owned (unrolled) dofs
    n_owned: int  # owned unrolled dofs
    block_size: int
    problem: Problem
    operators: Operators
    target: torch.Tensor | None = None  # (n_owned,) float64 FEM reference at the owned dofs
    bounds: tuple[list[float], list[float]] | None = None  # global box of the network inputs
    comm: MPI.Comm | None = None
    reference: Any = None  # the FE reference function (off-node measures), or None
    consistency: Any = None  # coupling.consistency.ConsistencyTerm added to the loss, or None

    @property
    def in_dim(self) -> int:
        """Number of network inputs (coordinates, plus any geometric features)."""
        return self.x_nodes.shape[1]

    def field(self, net: torch.nn.Module) -> torch.Tensor:
        """The network as FE coefficients on V's local dofs (Dirichlet data imposed)."""
        return self.boundary.apply(net(self.x_nodes).reshape(-1))

    def evaluate(self, net: torch.nn.Module) -> torch.Tensor:
        """The network at the owned dofs (what `target` and `weights` refer to)."""
        return self.field(net)[: self.n_owned]

    def to_function(self, net: torch.nn.Module, name: str = "u_network"
                    ) -> dolfinx.fem.Function:
        """The network's field as a DOLFINx function on the problem's space (collective)."""
        u = dolfinx.fem.Function(self.problem.V, name=name)
        with torch.no_grad():
            u.x.array[:] = self.field(net).detach().cpu().to(torch.float64).numpy()
        u.x.scatter_forward()  # ghosts from their owners: one value per dof on every rank
        return u


def sphere_images(centres: np.ndarray, radii: np.ndarray, periodic: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sphere centres and radii, with the 26 neighbouring cells' images for a periodic cell."""
    centres, radii = np.asarray(centres, float), np.asarray(radii, float)
    if not periodic:
        return centres, radii
    shifts = np.array(np.meshgrid(*[[-1.0, 0.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T
    return (centres[None] + shifts[:, None]).reshape(-1, 3), np.tile(radii, len(shifts))


def interface_distance(x: np.ndarray, centres: np.ndarray, radii: np.ndarray,
                       periodic: bool) -> np.ndarray:
    """|signed distance to the nearest spherical inclusion surface| at points x (n, 3).

    As a network input it lets a smooth network carry the strain kink across the
    interface (|φ| has one), the way level-set-augmented networks treat interface problems
    (e.g. Hu, Lin & Lai, J. Comput. Phys. 2022). With inclusions cut by the faces of a
    periodic cell the images in the 26 neighbouring cells count too.
    """
    c, r = sphere_images(centres, radii, periodic)
    d = np.full(len(x), np.inf)
    for ci, ri in zip(c, r, strict=True):  # few inclusions: a loop keeps memory at O(n)
        d = np.minimum(d, np.abs(np.linalg.norm(x - ci, axis=1) - ri))
    return d


def with_interface_distance(x: np.ndarray, bounds, dmesh: DistributedMesh,
                            feature: str = "distance"):
    """Coordinates with |distance to the nearest inclusion| appended (``feature =
    "depth"``: the inclusion depth of :mod:`coupling.autograd_elastic`, smooth away from
    the interfaces), and extended bounds."""
    info = dmesh.info
    if dmesh.kind != "rve" or dmesh.options.get("inclusion") != "sphere" or "radii" not in info:
        raise ConfigError("inputs.interface_distance", "needs a mesh of spherical inclusions "
                          "(mesh.kind = \"rve\" with inclusion = \"sphere\")")
    periodic = dmesh.options.get("placement") == "cut"
    pts = np.zeros((len(x), 3))
    pts[:, : x.shape[1]] = x
    lo, hi = bounds
    if feature == "depth":
        from .autograd_elastic import node_depth

        top = max(np.asarray(info["radii"], float)) / 2  # ψ ≤ r/2 (the deepest point)
        return np.column_stack([x, node_depth(dmesh, pts)]), (lo + [0.0], hi + [top])
    d = interface_distance(pts, np.asarray(info["centres"], float),
                           np.asarray(info["radii"], float), periodic)
    top = float(np.linalg.norm(np.asarray(hi) - np.asarray(lo)))  # a bound valid on every rank
    return np.column_stack([x, d]), (lo + [0.0], hi + [top / 2])


def discretise(problem: Problem, residual: str | Any = "galerkin", *, boundary: str | None = None,
               boundary_weight: float = 100.0, dtype: torch.dtype | None = None,
               reference=None, interface_distance: bool = False, batch: int | float = 0,
               seed: int = 0, refresh: int = 20, cluster_cells: int = 32, lift: str = "adf",
               consistency: float = 0.0, **options) -> Discretisation | SpaceTimeDiscretisation:
    """Make `problem` trainable with the named residual (collective).

    `residual` is ``"galerkin"`` (any :class:`fem.Problem`), ``"sp"`` or ``"autograd"``
    (built-in scalar problems, whose strong form is known), or a residual spec from a run
    config; `options` are its settings (``neighbours``, ``rings``, ``k``, ``radius``,
    ``order``, ``quadrature_degree``). `boundary` is ``"exact"`` | ``"hard"`` | ``"soft"``
    (default: exact for galerkin, hard for sp, soft for autograd). `reference` (an FE
    function or a :class:`fem.problems.Solution`) enables ``rel_l2`` in the measures;
    `dtype` defaults to torch's default dtype.
    Time-dependent problems are discretised in space-time (:mod:`coupling.spacetime`).
    With ``batch`` (a number of cells or a fraction) the galerkin energy is a sum over
    elements and each step of :func:`coupling.fit` samples cells (:mod:`coupling.elements`),
    in clusters of about `cluster_cells` cells, with a control-variate snapshot every
    `refresh` steps (0: plain sampling).
    `lift` (``"adf"`` | ``"harmonic"`` | ``"none"``) builds g̃ and D of the hard/exact
    boundaries (:mod:`coupling.boundary`); `consistency` > 0 adds the off-node consistency
    term of that weight (:mod:`coupling.consistency`).
    """
    from .config import SPACE_TIME, ResidualSpec, default_boundary_mode

    spec = residual if not isinstance(residual, str) else ResidualSpec(kind=residual, **options)
    dtype = dtype or torch.get_default_dtype()
    mode = boundary or default_boundary_mode(spec.kind, problem.name in SPACE_TIME)
    ref = getattr(reference, "u", reference)
    if problem.name in SPACE_TIME:
        from .spacetime import discretise_space_time

        return discretise_space_time(problem.spec, spec, boundary_weight, problem.dmesh,
                                     reference, dtype, problem.dmesh.comm)
    _check_supported(problem, spec.kind, mode, lift)
    dmesh = problem.dmesh
    ops = assemble_operators(problem)
    layout = ops.layout
    x_all = layout.coordinates[:, : dmesh.mesh.geometry.dim]
    bs, n_fun = layout.block_size, layout.n_function
    lo, hi = bounding_box(dmesh.mesh)
    bounds = lo.tolist(), hi.tolist()
    elastic_autograd = spec.kind == "autograd" and problem.vector
    if interface_distance:  # autograd differentiates the input: the smooth inclusion depth
        x_all, bounds = with_interface_distance(x_all, bounds, dmesh,
                                                "depth" if elastic_autograd else "distance")
    lumped = np.asarray(ops.M_scipy.sum(axis=1)).reshape(-1)
    bvals = _boundary_values(problem, ops, mode, dtype, lift,
                             layout.coordinates[:, : dmesh.mesh.geometry.dim])
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)  # noqa: E731
    if spec.kind == "galerkin" and batch:
        res = _element_energy(problem, bvals.restrict(n_fun), t(x_all[: n_fun // bs]), batch,
                              seed, refresh, cluster_cells, t)
    elif spec.kind == "galerkin":
        res = GalerkinEnergy(SparseOperator(ops.K.to(dtype)), ops.b.to(dtype), bvals, t(x_all),
                             layout.n_owned)
    elif spec.kind == "sp" and problem.vector:  # piecewise elasticity: coupling.sp_elastic
        from .sp_elastic import elastic_sp_residual

        res = elastic_sp_residual(problem, spec, mode, boundary_weight, ops, bvals, x_all, t)
    elif spec.kind == "sp":
        res = _sp_residual(problem, spec, mode, boundary_weight, ops, bvals, lumped, t)
    elif elastic_autograd:  # piecewise elasticity: coupling.autograd_elastic
        from .autograd_elastic import elastic_autograd_residual

        res = elastic_autograd_residual(problem, spec, boundary_weight, layout.coordinates,
                                        layout.n_owned // bs, t, interface_distance)
    else:
        res = _autograd_residual(problem, spec, boundary_weight, t)
    target = (torch.as_tensor(ref.x.array[: layout.n_owned].copy(), dtype=torch.float64)
              if ref is not None else None)
    disc = Discretisation(res, t(x_all[: n_fun // bs]), bvals.restrict(n_fun), t(lumped),
                          layout.n_owned, bs, problem, ops, target, bounds, dmesh.comm)
    disc.reference = ref
    if consistency:
        from .consistency import consistency_term

        disc.consistency = consistency_term(disc, consistency, seed)
    return disc


def _element_energy(problem, boundary, x, batch, seed, refresh, cluster_cells, t
                    ) -> ElementGalerkinEnergy:
    """The galerkin energy over elements, sampling `batch` cells (or that fraction) a step."""
    from fem.elements import cell_clusters, element_operators

    el = element_operators(problem)
    fraction = min(1.0, batch / el.n_global_cells) if batch >= 1 else float(batch)
    ids, n_clusters = cell_clusters(el, cluster_cells)
    return ElementGalerkinEnergy(t(el.K), t(el.b), torch.as_tensor(el.dofs.copy()),
                                 torch.as_tensor(ids), n_clusters, x, boundary, el.block_size,
                                 fraction, seed, refresh, el)


def _check_supported(problem: Problem, kind: str, mode: str, lift: str = "adf") -> None:
    """Refuse combinations a residual cannot serve (one line naming the setting)."""
    spec = getattr(problem, "spec", None)
    if kind not in ("galerkin", "sp", "autograd"):
        raise ConfigError("residual.kind", f"unknown value {kind!r} (choose from galerkin, sp, "
                          "autograd)")
    elastic = kind in ("sp", "autograd") and getattr(problem, "name", None) == "elasticity"
    if kind != "galerkin" and (spec is None or (problem.vector and not elastic)):
        raise ConfigError("residual.kind", f"{kind!r} evaluates a scalar strong form and needs a "
                          f"built-in scalar problem; use 'galerkin' for {problem.name!r}")
    if mode not in ("exact", "hard", "soft"):
        raise ConfigError("boundary.mode", f"unknown value {mode!r} (choose from exact, hard, "
                          "soft)")
    if mode != "exact" and spec is None:
        raise ConfigError("boundary.mode", f"{mode!r} needs the boundary data of a built-in "
                          "problem; use 'exact' with a VariationalProblem")
    if lift not in ("adf", "harmonic", "none"):
        raise ConfigError("boundary.lift", f"unknown value {lift!r} (choose from adf, harmonic, "
                          "none)")
    if mode == "hard" and lift == "none":
        raise ConfigError("boundary.lift", "'hard' boundaries need a lift: 'adf' or 'harmonic'")
    if problem.vector and mode == "hard" and lift != "adf":
        raise ConfigError("boundary.lift", f"the {lift!r} lift is scalar-only; use 'adf' for "
                          "elasticity")
    if kind == "galerkin" and problem.V.ufl_element().embedded_superdegree != 1:
        raise ConfigError("problem.degree", "the galerkin residual evaluates the network at "
                          "vertices and needs a degree-1 space")


def _boundary_values(problem, ops, mode, dtype, lift="adf", x=None) -> BoundaryValues:
    """Dirichlet data on every local column (extra couplings fetched from their owners)."""
    layout, dmesh = ops.layout, problem.dmesh
    comm = dmesh.comm
    if mode == "soft":
        return BoundaryValues("none")
    fixed = np.full(layout.n_function, np.nan)
    fixed[ops.dirichlet_dofs] = ops.dirichlet_values
    full = _extend_to_columns(fixed, problem.V, layout, comm)
    idx = np.flatnonzero(~np.isnan(full))
    index = torch.as_tensor(idx, dtype=torch.int64)
    values = torch.as_tensor(full[idx], dtype=dtype)
    if lift == "adf" and getattr(problem, "spec", None) is not None:
        from .lift import build_lift

        lifter = build_lift(problem, comm)
        lifter.normalise(x[: layout.n_owned // layout.block_size], comm)
        G, D = (a.reshape(-1) for a in lifter(x))
        G[idx], D[idx] = full[idx], 0.0  # the nodes of Γ_D carry their data exactly
        return BoundaryValues(mode, index, values, torch.as_tensor(G, dtype=dtype),
                              torch.as_tensor(D, dtype=dtype), lifter)
    if mode == "exact":
        return BoundaryValues("exact", index, values)
    from fem.problems import solve

    dspec, lspec = distance_and_lift_specs(problem.spec)
    D = solve(dmesh, dspec).u.x.array.copy()
    G = solve(dmesh, lspec).u.x.array.copy()
    D = normalised(_extend_to_columns(D, problem.V, layout, comm), comm)
    G = _extend_to_columns(G, problem.V, layout, comm)
    return BoundaryValues("hard", lift=torch.as_tensor(G, dtype=dtype),
                          distance=torch.as_tensor(D, dtype=dtype))


def _extend_to_columns(values: np.ndarray, V, layout, comm) -> np.ndarray:
    """Values on V's local dofs extended to the layout's extra columns (from their owners)."""
    extra = layout.local_to_global[layout.n_function:]
    if comm.size == 1:
        return values.copy()
    first = V.dofmap.index_map.local_range[0] * layout.block_size
    got = fetch_from_owners(comm, values[: layout.n_owned], first, extra,
                            layout.owners[layout.n_function:])
    return np.concatenate([values, got])


def _soft_dirichlet(problem, weight: float, t) -> SoftDirichlet:
    """∫_ΓD (u − g)² at boundary quadrature points of every Dirichlet boundary."""
    dmesh = problem.dmesh
    bd = fem.data.boundary_data(dmesh, degree=2)
    gdim = dmesh.mesh.geometry.dim
    xs, gs, ws = [], [], []
    for bc in dirichlet_boundaries(problem.spec):
        sel = (np.ones(len(bd.weights), bool) if bc.boundary == "*"
               else bd.tags == dmesh.facet_names.get(bc.boundary, -2))
        if bc.boundary not in ("*",) and bc.boundary not in dmesh.facet_names:
            raise ConfigError(f"{bc.key}.boundary", f"no facet group {bc.boundary!r} in this mesh "
                              f"(it has {sorted(dmesh.facet_names)})")
        pts = bd.points[sel]
        xs.append(pts[:, :gdim])
        gs.append(bc.value[0].numpy()(pts.T))
        ws.append(bd.weights[sel])
    return SoftDirichlet(t(np.concatenate(xs)), t(np.concatenate(gs)), t(np.concatenate(ws)),
                         weight)


def _node_coefficient(problem, ops) -> np.ndarray:
    """k at owned nodes: ∫kφ_i / ∫φ_i (the cell average around a node; exact for constant k)."""
    v = ufl.TestFunction(problem.V)
    num = assemble_owned_vector(problem.k * v * problem.dx)
    den = assemble_owned_vector(dolfinx.fem.Constant(problem.V.mesh, 1.0) * v * problem.dx)
    return num / den


def _sp_residual(problem, r, mode, weight, ops, boundary, lumped, t) -> SPResidual:
    """NeuroPINNs' residual: Laplacian from the SP operator applied twice, at owned free nodes."""
    dmesh, spec = problem.dmesh, problem.spec
    if any(bc.type == "neumann" for bc in spec.bcs):
        raise ConfigError("residual.kind", "'sp' imposes no Neumann data (use 'galerkin', which "
                          "has them in its load vector, or 'autograd')")
    layout = ops.layout
    gdim = dmesh.mesh.geometry.dim
    x = layout.coordinates[:, :gdim]
    n_owned = layout.n_owned
    free = np.ones(n_owned, bool)
    free[ops.dirichlet_dofs[ops.dirichlet_dofs < n_owned]] = False
    centres = np.flatnonzero(free)
    op = sp.build_sp_operator(x, _sp_source(r, problem, len(x)), centres, second_order=True,
                              order=r.order)
    lap = op.laplacian_matrix()  # rows: the centres
    k = _node_coefficient(problem, ops)[centres]
    f = (spec.source[0].numpy()(layout.coordinates[centres].T) if spec.source
         else np.zeros(len(centres)))
    soft = _soft_dirichlet(problem, weight, t) if mode == "soft" else None
    return SPResidual(SparseOperator(to_torch_csr(lap, dtype=t(np.zeros(0)).dtype)),
                      torch.as_tensor(centres, dtype=torch.int64), t(k),
                      spec.kappa**2, t(f), t(lumped[centres]), boundary, t(x), soft)


def _sp_source(r, problem, n_points: int):
    """The neighbour source of the sp residual: mesh rings, k nearest or a radius."""
    if r.neighbours == "mesh":
        cells = problem.V.dofmap.list  # cell → node (block) indices
        offsets = np.arange(0, cells.size + 1, cells.shape[1], dtype=np.int64)
        graph = sp.cell_vertex_adjacency(offsets, cells.reshape(-1), n_points)
        return sp.MeshAdjacency(graph, rings=r.rings)
    if r.neighbours == "knn":
        return sp.KNearest(r.k)
    return sp.Radius(r.radius)


def _phase_values(coefficients, names: dict[str, int], tags: np.ndarray) -> np.ndarray:
    if not isinstance(coefficients, dict):
        return np.full(len(tags), float(coefficients))
    out = np.full(len(tags), np.nan)
    for name, value in coefficients.items():
        out[tags == names[name]] = value
    return out


def _autograd_residual(problem, r, weight, t) -> AutogradResidual:
    """Vanilla PINN residual at volume quadrature points, soft Dirichlet, Neumann by autograd."""
    dmesh, spec = problem.dmesh, problem.spec
    gdim = dmesh.mesh.geometry.dim
    qd = fem.data.quadrature_data(dmesh, degree=r.quadrature_degree)
    k = _phase_values(spec.coefficients, qd.phase_names, qd.phase)
    f = (spec.source[0].numpy()(qd.points.T) if spec.source else np.zeros(len(qd.weights)))
    soft = _soft_dirichlet(problem, weight, t) if dirichlet_boundaries(spec) else None
    neumann = None
    nbcs = [bc for bc in spec.bcs if bc.type == "neumann"]
    if nbcs:
        bd = fem.data.boundary_data(dmesh, degree=2)
        tdim = dmesh.tdim
        f2c = dmesh.mesh.topology.connectivity(tdim - 1, tdim)
        cell_phase = fem.data._cell_tag_array(dmesh, dmesh.mesh.topology.index_map(tdim).size_local)
        xs, ns, hs, ws, ks = [], [], [], [], []
        for bc in nbcs:
            sel = bd.tags == dmesh.facet_names.get(bc.boundary, -2)
            xs.append(bd.points[sel][:, :gdim])
            ns.append(bd.normals[sel][:, :gdim])
            hs.append(bc.value[0].numpy()(bd.points[sel].T))
            ws.append(bd.weights[sel])
            cells = np.array([f2c.links(f)[0] for f in bd.facets[sel]], dtype=np.int64)
            ks.append(_phase_values(spec.coefficients, dmesh.cell_names, cell_phase[cells]))
        neumann = NeumannTerm(t(np.concatenate(xs)), t(np.concatenate(ns)), t(np.concatenate(ks)),
                              t(np.concatenate(hs)), t(np.concatenate(ws)), weight)
    return AutogradResidual(t(qd.points[:, :gdim]), t(k), spec.kappa**2, t(f),
                            t(qd.weights), soft, neumann)
