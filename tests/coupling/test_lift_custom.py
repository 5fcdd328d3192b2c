"""The ADF lift on a user's VariationalProblem, and discretise's options on custom problems."""

import gmsh
import numpy as np
import pytest
import torch
import ufl

import coupling
import fem
import meshes
import spiking
from fem.errors import ConfigError
from meshes.fenics import MPI, dolfinx

TOL = 1e-10


@pytest.fixture(scope="module")
def square():
    return meshes.build("rectangle", 0.25, MPI.COMM_SELF)


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    """A unit cube from a user's .msh: facet groups "left" (x = 0) and "rest"."""
    path = tmp_path_factory.mktemp("msh") / "cube.msh"
    gmsh.initialize(["", "-v", "0"])  # noqa: S604 (argv of gmsh, no shell)
    gmsh.model.add("cube")
    gmsh.model.occ.addBox(0, 0, 0, 1, 1, 1)
    gmsh.model.occ.synchronize()
    faces = [t for _, t in gmsh.model.getEntities(2)]
    left = [t for t in faces if abs(gmsh.model.occ.getCenterOfMass(2, t)[0]) < 1e-9]
    gmsh.model.addPhysicalGroup(3, [1], name="domain")
    gmsh.model.addPhysicalGroup(2, left, name="left")
    gmsh.model.addPhysicalGroup(2, [t for t in faces if t not in left], name="rest")
    gmsh.option.setNumber("Mesh.MeshSizeMax", 0.5)
    gmsh.model.mesh.generate(3)
    gmsh.write(str(path))
    gmsh.finalize()
    return meshes.build("file", path=str(path), comm=MPI.COMM_SELF)


def _poisson(dm, bcs):
    V = fem.functionspace(dm)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    return fem.VariationalProblem(dm, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx,
                                  1.0 * v * ufl.dx, bcs=bcs)


def _elastic(dm, bcs):
    gdim = dm.mesh.geometry.dim
    V = fem.functionspace(dm, shape=(gdim,))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    eps = lambda w: ufl.sym(ufl.grad(w))  # noqa: E731
    a = (2 * ufl.inner(eps(u), eps(v)) + ufl.div(u) * ufl.div(v)) * ufl.dx
    L = ufl.inner(ufl.as_vector([0.0] * (gdim - 1) + [-0.1]), v) * ufl.dx(dm.mesh)
    return fem.VariationalProblem(dm, a, L, bcs=bcs)


def _on_pieces(disc, n, rng):
    """n random points on every piece of component 0 of the lift (gdim coordinates)."""
    gdim = disc.problem.dmesh.mesh.geometry.dim
    out = []
    for piece in disc.boundary.lifter.pieces[0]:
        f = rng.integers(0, len(piece.vertices), n)
        lam = rng.dirichlet(np.ones(piece.vertices.shape[1]), n)
        out.append(np.einsum("nv,nvd->nd", lam, piece.vertices[f])[:, :gdim])
    return out


def _net(disc):
    return spiking.MLP(disc.in_dim, [16], out_dim=disc.block_size, seed=1,
                       dtype=torch.float64)


SCALAR = {"constant": (0.5, lambda x: 0.5 + 0 * x[0]),
          "expression": ("1 + x*y", lambda x: 1 + x[0] * x[1]),
          "callable": (lambda x: np.sin(3 * x[1]), lambda x: np.sin(3 * x[1]))}


@pytest.mark.parametrize("kind", sorted(SCALAR))
def test_raw_network_meets_scalar_data_off_the_nodes(square, kind):
    """u = g̃ + D·N of a random network equals g at random points of x0 and x1 (to 1e-10)."""
    value, exact = SCALAR[kind]
    disc = coupling.discretise(_poisson(square, {"x0": value, "x1": -0.25}),
                               dtype=torch.float64)
    net = _net(disc)
    x0, x1 = _on_pieces(disc, 500, np.random.default_rng(0))
    pad = lambda p: np.vstack([p.T, np.zeros((3 - p.shape[1], len(p)))])  # noqa: E731
    assert np.abs(disc.evaluate_at(net, x0) - exact(pad(x0))).max() < TOL
    assert np.abs(disc.evaluate_at(net, x1) + 0.25).max() < TOL
    inside = disc.evaluate_at(net, np.array([[0.5 * x1[0, 0], 0.5 * x1[0, 1]]]))
    assert np.isfinite(inside).all()


def test_raw_network_meets_vector_data_per_component(square):
    """Elasticity-like form, a per-component list (constant, expression, callable) on x0."""
    data = [0.0, "0.1*y"]
    bcs = {"x0": data, "x1": [lambda x: 0.01 * x[1], 0.02]}
    disc = coupling.discretise(_elastic(square, bcs), dtype=torch.float64)
    net = _net(disc)
    x0, x1 = _on_pieces(disc, 500, np.random.default_rng(1))
    u0, u1 = disc.evaluate_at(net, x0), disc.evaluate_at(net, x1)
    assert np.abs(u0[:, 0]).max() < TOL and np.abs(u0[:, 1] - 0.1 * x0[:, 1]).max() < TOL
    assert np.abs(u1[:, 0] - 0.01 * x1[:, 1]).max() < TOL
    assert np.abs(u1[:, 1] - 0.02).max() < TOL


def test_raw_network_meets_data_on_the_whole_boundary_in_3d(cube):
    """"*" in 3D (every exterior facet of a .msh mesh): an expression met to 1e-10."""
    disc = coupling.discretise(_poisson(cube, {"*": "x + 2*y*z"}), dtype=torch.float64)
    (x,) = _on_pieces(disc, 800, np.random.default_rng(2))
    u = disc.evaluate_at(_net(disc), x)
    assert np.abs(u - (x[:, 0] + 2 * x[:, 1] * x[:, 2])).max() < TOL


def test_raw_network_meets_vector_data_on_a_named_group_in_3d(cube):
    """A clamped face ("left") of a 3D elastic body: all three components vanish there."""
    disc = coupling.discretise(_elastic(cube, {"left": [0.0, 0.0, 0.0]}), dtype=torch.float64)
    (x,) = _on_pieces(disc, 500, np.random.default_rng(3))
    assert np.abs(disc.evaluate_at(_net(disc), x)).max() < TOL


def _trained(disc, steps=5, **kw):
    net = _net(disc)
    coupling.fit(net, disc, steps=steps, lr=1e-2, log_every=1000, handle_signals=False, **kw)
    with torch.no_grad():
        return disc.evaluate(net).numpy()


def test_lift_none_and_adf_train_differently(square):
    """The lift takes effect on a custom problem: 'none' and 'adf' give different fields."""
    pb = _poisson(square, {"x0": 0.0})
    none = _trained(coupling.discretise(pb, lift="none", dtype=torch.float64))
    adf = _trained(coupling.discretise(pb, lift="adf", dtype=torch.float64))
    assert np.abs(none - adf).max() > 1e-6


def _one_line(err, key):
    text = str(err.value)
    assert "\n" not in text and key in text, text


@pytest.mark.parametrize("options, key", [
    ({"lift": "harmonic"}, "boundary.lift"),
    ({"boundary": "hard"}, "boundary.mode"),
    ({"boundary": "soft"}, "boundary.mode"),
    ({"residual": "sp"}, "residual.kind"),
    ({"residual": "autograd"}, "residual.kind"),
    ({"boundary_weight": 5.0}, "boundary.weight"),  # weighs a soft penalty it never has
    ({"interface_distance": True}, "inputs.interface_distance"),  # no inclusions here
])
def test_options_a_custom_problem_cannot_serve_are_refused(square, options, key):
    with pytest.raises(ConfigError) as err:
        coupling.discretise(_poisson(square, {"x0": 0.0}), **options)
    _one_line(err, key)


def test_adf_on_raw_dirichletbcs_is_refused_and_none_runs(square):
    """DirichletBC objects carry only nodal values: 'adf' refused in one line, 'none' runs."""
    V = fem.functionspace(square)
    facets = square.facets("x0")
    dofs = dolfinx.fem.locate_dofs_topological(V, square.tdim - 1, facets)
    bc = dolfinx.fem.dirichletbc(dolfinx.fem.Constant(square.mesh, 0.0), dofs, V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    pb = fem.VariationalProblem(square, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx,
                                1.0 * v * ufl.dx, bcs=[bc])
    with pytest.raises(ConfigError) as err:
        coupling.discretise(pb)
    _one_line(err, "boundary.lift")
    assert "mapping" in str(err.value) and "none" in str(err.value)
    assert coupling.discretise(pb, lift="none").boundary.lifter is None


def test_other_options_take_effect_on_a_custom_problem(square):
    """batch, seed, consistency, reference and dtype change what a custom problem trains."""
    pb = _poisson(square, {"x0": 0.0, "x1": "y"})
    base = _trained(coupling.discretise(pb, dtype=torch.float64))
    batched = _trained(coupling.discretise(pb, dtype=torch.float64, batch=0.5))
    assert np.abs(base - batched).max() > 1e-8
    other_seed = _trained(coupling.discretise(pb, dtype=torch.float64, batch=0.5, seed=3))
    assert np.abs(other_seed - batched).max() > 1e-8
    disc = coupling.discretise(pb, dtype=torch.float64, consistency=1.0)
    _, terms = disc.loss(_net(disc))
    assert "consistency" in terms
    assert coupling.discretise(pb, dtype=torch.float32).x_nodes.dtype == torch.float32
    assert coupling.discretise(pb, reference=pb.solve()).target is not None
