"""Strong-form SP residual of piecewise elasticity: exactness, a trained laminate, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from elastic_helpers import U, affine_traction_bcs, laminate_exact, laminate_mesh, laminate_spec

import coupling
import fem
import meshes
import spiking
from fem.config import parse_problem
from fem.errors import ConfigError
from meshes import DistributedMesh
from meshes.fenics import MPI


def _rows(res, u_nodes: np.ndarray) -> np.ndarray:
    """A u − c for given nodal displacements (n, d), float64."""
    A = res.A.A.to(torch.float64)
    u = torch.as_tensor(u_nodes.reshape(-1), dtype=torch.float64)
    return (torch.sparse.mm(A, u[:, None])[:, 0] - res.c.to(torch.float64)).numpy()


def _sp(problem, **kw):
    """The sp discretisation (soft: the rows do not depend on how Dirichlet data enter)."""
    return coupling.discretise(problem, "sp", boundary="soft", dtype=torch.float64, **kw)


@pytest.fixture(scope="module")
def rve():
    return meshes.build("rve", 0.3, MPI.COMM_SELF, n=2, inclusion="sphere")


@pytest.mark.parametrize("order", [1, 2])
def test_affine_field_exact_on_two_phase_rve_with_shared_moduli(rve, order):
    """Both phases E = 2, ν = 0.3: an affine field (any gradient) has zero residual rows,
    interior, interface and traction (faces loaded with its own σ·n); different moduli make
    the interface rows nonzero."""
    grad = np.array([[0.3, -0.1, 0.2], [0.05, -0.2, 0.1], [0.15, 0.0, 0.25]])
    bcs = affine_traction_bcs(grad, 2.0, 0.3)
    mats = {"matrix": {"E": 2.0, "nu": 0.3}, "inclusion": {"E": 2.0, "nu": 0.3}}
    spec = parse_problem({"type": "elasticity", "materials": mats, "bcs": bcs})
    disc = _sp(fem.build_problem(rve, spec), order=order)
    res = disc.residual
    x = disc.operators.layout.coordinates
    u = 0.1 + x @ grad.T
    r = _rows(res, u)
    assert res.counts[0] > 100 and res.counts[1] > 50 and res.counts[2] > 100
    assert np.abs(r).max() < 1e-10
    mats["inclusion"] = {"E": 20.0, "nu": 0.3}
    spec2 = parse_problem({"type": "elasticity", "materials": mats, "bcs": bcs})
    res2 = _sp(fem.build_problem(rve, spec2), order=order).residual
    r2 = _rows(res2, u)
    n0, n1 = res2.counts[0], res2.counts[1]
    assert np.abs(r2[:n0]).max() < 1e-10  # still equilibrium in each phase
    assert np.abs(r2[n0:n0 + n1]).max() > 0.1  # but tractions jump across the interface


@pytest.mark.parametrize("dim", [2, 3])
def test_piecewise_affine_laminate_solution_is_exact(dim):
    """The analytic laminate field (kinked at x = ½) zeroes every row; a smooth field with
    the same end values (u_x = U x) does not (its interface traction jumps)."""
    dm = laminate_mesh(dim, 8 if dim == 2 else 4)
    disc = _sp(fem.build_problem(dm, laminate_spec(dim)))
    res = disc.residual
    x = disc.operators.layout.coordinates
    r = _rows(res, laminate_exact(x, dim))
    assert min(res.counts) > 0
    assert np.abs(r).max() < 1e-12
    smooth = np.zeros((len(x), dim))
    smooth[:, 0] = U * x[:, 0]
    assert np.abs(_rows(res, smooth)).max() > 1e-3


def test_vsn_sp_trains_2d_laminate_under_tension_within_2_percent():
    """NeuroPINN (VSN + sp, hard ADF lift) on the two-phase laminate: ≤ 2% relative L2 of
    the displacement at the nodes vs the analytic kinked solution."""
    dm = laminate_mesh(2, 16)
    disc = coupling.discretise(fem.build_problem(dm, laminate_spec(2)), "sp", boundary="hard")
    vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.02)  # noqa: E731
    net = spiking.MLP(disc.in_dim, [32, 32], out_dim=2, unit=vsn, seed=0, output_scale=U)
    coupling.fit(net, disc, steps=2000, lr=5e-3)
    with torch.no_grad():
        u = disc.field(net).double().numpy()
    exact = laminate_exact(disc.operators.layout.coordinates, 2).reshape(-1)[: len(u)]
    err = np.linalg.norm(u - exact) / np.linalg.norm(exact)
    assert err <= 0.02, err


def test_bad_inputs_give_one_line():
    """sp cannot serve P2 elasticity or homogenisation; phases without cell tags: one line."""
    dm = laminate_mesh(2, 4)
    spec = laminate_spec(2)
    spec.degree = 2
    with pytest.raises(ConfigError, match=r"problem\.degree.*degree = 1") as e1:
        coupling.discretise(fem.build_problem(dm, spec), "sp", boundary="soft")
    mats = {"matrix": {"E": 1.0, "nu": 0.3}, "inclusion": {"E": 2.0, "nu": 0.3}}
    hom = parse_problem({"type": "homogenisation", "materials": mats})
    rve = meshes.build("rve", 0.4, MPI.COMM_SELF, n=1)
    with pytest.raises(ConfigError, match=r"residual\.kind") as e2:
        coupling.discretise(fem.build_problem(rve, hom), "sp", boundary="soft")
    bare = DistributedMesh(dm.mesh, None, dm.facet_tags, {}, dm.facet_names)
    with pytest.raises(ConfigError, match="no cell group") as e3:
        coupling.discretise(fem.build_problem(bare, laminate_spec(2)), "sp", boundary="soft")
    for e in (e1, e2, e3):
        assert "\n" not in str(e.value) and str(e.value).startswith("config ")
