"""API errors that name the culprit (issue 28): zero widths, a network whose input width
does not match the discretisation, a non-symmetric form for the Galerkin energy."""

import pytest
import torch
import ufl

import coupling
import fem
import meshes
import spiking
from fem.errors import ConfigError
from meshes.fenics import MPI


@pytest.fixture(scope="module")
def square():
    return meshes.build("rectangle", 0.25, comm=MPI.COMM_SELF)


@pytest.mark.parametrize("widths, culprit", [([16, 0], r"widths\[1\] = 0"),
                                             ([0], r"widths\[0\] = 0"),
                                             ([16, -3], r"widths\[1\] = -3"),
                                             ([16, 2.5], r"widths\[1\] = 2.5"),
                                             ([True], r"widths\[0\] = True"),
                                             ("16", "widths = '16'")])
def test_mlp_refuses_bad_widths(widths, culprit):
    with pytest.raises(ValueError, match=culprit) as err:
        spiking.MLP(2, widths)
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("kw, culprit", [({"in_dim": 0}, "in_dim = 0"),
                                         ({"out_dim": 0}, "out_dim = 0"),
                                         ({"in_dim": 2.0}, "in_dim = 2.0")])
def test_mlp_refuses_bad_dims(kw, culprit):
    args = {"in_dim": 2, "widths": [4]} | kw
    with pytest.raises(ValueError, match=culprit):
        spiking.MLP(args.pop("in_dim"), args.pop("widths"), **args)


def test_mlp_accepts_numpy_integer_widths():
    import numpy as np

    net = spiking.MLP(np.int64(2), [np.int64(4)], seed=0)
    assert net(torch.zeros(3, 2)).shape == (3, 1)


def _spaces(dm):
    V = fem.functionspace(dm)
    return V, ufl.TrialFunction(V), ufl.TestFunction(V)


def test_symmetric_form_accepted_with_round_off_ratio(square):
    V, u, v = _spaces(square)
    x = ufl.SpatialCoordinate(square.mesh)
    a = (1 + x[0] ** 2) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + u * v * ufl.dx
    pb = fem.VariationalProblem(square, a, 1.0 * v * ufl.dx, bcs={"*": 0.0})
    assert pb.check_symmetric() < 1e-14


def test_non_symmetric_form_refused_in_one_line_naming_a(square):
    V, u, v = _spaces(square)
    a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + u.dx(0) * v * ufl.dx  # advection
    with pytest.raises(ConfigError, match="not symmetric") as err:
        fem.VariationalProblem(square, a, 1.0 * v * ufl.dx, bcs={"*": 0.0})
    assert str(err.value).startswith("config a:") and len(str(err.value).splitlines()) == 1


def test_non_symmetric_form_can_still_be_solved_when_asked(square):
    V, u, v = _spaces(square)
    a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + u.dx(0) * v * ufl.dx
    pb = fem.VariationalProblem(square, a, 1.0 * v * ufl.dx, bcs={"*": 0.0},
                                check_symmetry=False)
    assert pb.solve().info["norms"]["l2"] > 0
    with pytest.raises(ConfigError, match="not symmetric"):
        pb.check_symmetric()


def test_galerkin_refuses_soft_boundaries_instead_of_ignoring_the_data(square):
    # the Galerkin energy has no boundary term: 'soft' would train without the Dirichlet data
    V, u, v = _spaces(square)
    pb = fem.VariationalProblem(square, ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx,
                                1.0 * v * ufl.dx, bcs={"*": 1.0})
    with pytest.raises(ConfigError, match=r"boundary.mode.*'soft'.*'exact' or 'hard'"):
        coupling.discretise(pb, "galerkin", boundary="soft")
