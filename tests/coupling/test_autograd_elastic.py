"""The vanilla PINN on piecewise elasticity (residuals.autograd_elastic): exactness of every
term on affine and laminate fields, autograd's divergence on quadratics, the inclusion-depth
input, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from elastic_helpers import affine_traction_bcs, laminate_exact, laminate_mesh, laminate_spec
from hypothesis import given, settings
from hypothesis import strategies as st

import coupling
import fem
import meshes
from coupling.config import parse_run_config
from coupling.geometry import inclusion_depth
from coupling.residuals.autograd_elastic import ElasticAutogradResidual, Points
from fem.config import parse_problem
from fem.errors import ConfigError
from meshes.fenics import MPI


@pytest.fixture(scope="module")
def rve():
    return meshes.build("rve", 0.3, MPI.COMM_SELF, n=2, inclusion="sphere")


class Affine(torch.nn.Module):
    """u = c + G x, whatever extra inputs (the inclusion depth) come after x."""

    def __init__(self, grad: np.ndarray, c: float = 0.1):
        super().__init__()
        self.G, self.c = torch.as_tensor(grad), c

    def forward(self, x):
        d = self.G.shape[0]
        return self.c + x[:, :d] @ self.G.T + 0.0 * x[:, d:].sum(dim=1, keepdim=True)


def _terms(res, net, batch=None) -> dict[str, float]:
    return {k: float(v.detach()) for k, v in res.terms(net, batch).items()}


def test_affine_field_exact_on_two_phase_rve_with_shared_moduli(rve):
    """E = 2, ν = 0.3 in both phases, faces loaded with the field's own σ·n: every term of an
    affine field vanishes (pde, interface, traction); a 10× stiffer inclusion leaves the
    pde term at zero but not the interface tractions."""
    grad = np.array([[0.3, -0.1, 0.2], [0.05, -0.2, 0.1], [0.15, 0.0, 0.25]])
    bcs = affine_traction_bcs(grad, 2.0, 0.3)
    mats = {"matrix": {"E": 2.0, "nu": 0.3}, "inclusion": {"E": 2.0, "nu": 0.3}}

    def residual(materials):
        spec = parse_problem({"type": "elasticity", "materials": materials, "bcs": bcs})
        disc = coupling.discretise(fem.build_problem(rve, spec), "autograd", boundary="soft",
                                   dtype=torch.float64, interface_distance=True)
        return disc.residual

    res = residual(mats)
    assert len(res.volume.x) > 1000 and len(res.interface_p.x) > 100
    assert len(res.traction.x) > 100 and len(res.dirichlet.x) == len(res.traction.x)
    terms = _terms(res, Affine(grad))
    assert max(terms.values()) < 1e-24, terms
    stiff = _terms(residual({**mats, "inclusion": {"E": 20.0, "nu": 0.3}}), Affine(grad))
    assert stiff["pde"] < 1e-24 and stiff["interface"] > 1e-4


class PlaneDepth:
    """A laminate's kink input: x − ½ on the stiff phase's side, 0 on the soft one's."""

    def __call__(self, x, phase):
        s = torch.where(phase == 1, x[:, 0] - 0.5, 0.0 * x[:, 0])
        return torch.cat([x, s[:, None]], dim=1)


class Laminate(torch.nn.Module):
    """The analytic laminate displacement through the kink input: s_a x + (s_b − s_a) s."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        x = np.array([[0.25] + [0.0] * (dim - 1), [0.75] + [0.0] * (dim - 1)])
        u = laminate_exact(x, dim)[:, 0]
        self.sa = u[0] / 0.25  # the soft side's slope
        self.sb = (u[1] - 0.5 * self.sa) / 0.25  # the stiff side's

    def forward(self, x):
        ux = self.sa * x[:, 0] + (self.sb - self.sa) * x[:, self.dim]
        return torch.stack([ux] + [0.0 * ux] * (self.dim - 1), dim=1)


@pytest.mark.parametrize("dim", [2, 3])
def test_laminate_solution_exact(dim):
    """The piecewise-affine laminate solution (strain jumps at x = ½) zeroes every term —
    volume, traction and displacement continuity across the interface, rollers and free
    tangential tractions — when the network has a kink input; the same field without the
    kink (one slope) does not."""
    dm = laminate_mesh(dim, 6 if dim == 3 else 12)
    disc = coupling.discretise(fem.build_problem(dm, laminate_spec(dim)), "autograd",
                               boundary="soft", dtype=torch.float64)
    res = disc.residual
    res.depth = PlaneDepth()
    net = Laminate(dim)
    x = torch.tensor([[0.3] + [0.5] * (dim - 1), [0.9] + [0.5] * (dim - 1)], dtype=torch.float64)
    phase = torch.tensor([0, 1])
    u = net(res.inputs(x, phase))[:, 0].numpy()
    assert np.allclose(u, laminate_exact(x.numpy(), dim)[:, 0], atol=1e-15)
    terms = _terms(res, net)
    assert len(res.interface_p.x) > 0 and max(terms.values()) < 1e-24, terms
    res.depth = None
    smooth = Affine(np.diag([0.01] + [0.0] * (dim - 1)), c=0.0)
    assert _terms(res, smooth)["interface"] > 1e-6


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_divergence_of_a_quadratic_field(seed):
    """u_i = ½ xᵀH_i x: div σ_i = λ Σ_k H_k[k, i] + μ (tr H_i + Σ_j H_j[i, j]) per phase."""
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(3, 3, 3))
    H = 0.5 * (H + H.transpose(0, 2, 1))
    lam, mu = rng.uniform(0.5, 5, 2), rng.uniform(0.5, 5, 2)
    Ht = torch.as_tensor(H)

    class Quadratic(torch.nn.Module):
        def forward(self, x):
            return 0.5 * torch.einsum("nj,ijk,nk->ni", x, Ht, x)

    x = torch.as_tensor(rng.uniform(-1, 1, (20, 3)))
    phase = torch.as_tensor(rng.integers(0, 2, 20))
    none = Points(torch.zeros((0, 3), dtype=torch.float64), torch.zeros(0, dtype=torch.int64),
                  torch.zeros(0, dtype=torch.float64))
    res = ElasticAutogradResidual(none, none, none, none, none, torch.as_tensor(lam),
                                  torch.as_tensor(mu), 1.0)
    _, _, div = res.displacement_and_stress(Quadratic(), Points(x, phase, torch.ones(20)),
                                            second=True)
    for p in (0, 1):
        expect = np.array([lam[p] * sum(H[k, k, i] for k in range(3))
                           + mu[p] * (np.trace(H[i]) + sum(H[j, i, j] for j in range(3)))
                           for i in range(3)])
        got = div[phase == p].detach().numpy()
        assert np.allclose(got, expect[None, :], atol=1e-12)


def test_inclusion_depth_kinks_only_at_the_spheres():
    """ψ is 0 outside, (r² − |x − c|²)/(2r) inside; |∇ψ| jumps from 0 to 1 across r."""
    c, r = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64), torch.tensor([0.2],
                                                                               dtype=torch.float64)
    d = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    for t, grad_norm in ((0.2 - 1e-6, 1.0), (0.2 + 1e-6, 0.0), (0.1, 0.5), (0.4, 0.0)):
        x = (c + t * d).requires_grad_(True)
        psi = inclusion_depth(x, c, r)
        (g,) = torch.autograd.grad(psi.sum(), x)
        assert abs(float(g.norm()) - grad_norm) < 1e-5
        assert float(psi.detach()) == pytest.approx(max(0.0, (0.04 - t * t) / 0.4), abs=1e-12)


def test_bad_configs_one_line(rve):
    """The inclusion depth needs spherical inclusions; sp cannot take it; autograd serves
    linear elasticity, not homogenisation."""
    base = {"mesh": {"kind": "rve", "size": 0.3, "n": 2},
            "problem": {"type": "elasticity", "materials": {"matrix": {"E": 1, "nu": 0.3},
                                                            "inclusion": {"E": 5, "nu": 0.3}},
                        "bcs": [{"boundary": "x0", "type": "dirichlet",
                                 "value": [0.0, 0.0, 0.0]}]},
            "network": {"neuron": "ann"}, "residual": {"kind": "autograd"},
            "inputs": {"interface_distance": True}}
    cfg = parse_run_config(base)
    assert cfg.boundary.mode == "soft"
    with pytest.raises(ConfigError, match="inputs.interface_distance"):
        parse_run_config({**base, "residual": {"kind": "sp"}})
    with pytest.raises(ConfigError, match="boundary.mode"):
        parse_run_config({**base, "boundary": {"mode": "hard"}})
    lam = meshes.build("rve", 0.3, MPI.COMM_SELF, n=2, inclusion="fibre")
    spec = parse_problem(base["problem"])
    with pytest.raises(ConfigError, match="inputs.interface_distance") as err:
        coupling.discretise(fem.build_problem(lam, spec), "autograd", boundary="soft",
                            interface_distance=True)
    assert "\n" not in str(err.value)
    hom = parse_problem({"type": "homogenisation", "materials": base["problem"]["materials"]})
    with pytest.raises(ConfigError, match="residual.kind"):
        coupling.discretise(fem.build_problem(rve, hom), "autograd", boundary="soft")


def test_batched_terms_are_unbiased(rve):
    """With a batch of volume points, every term (facet terms sampled at the same fraction)
    averages to its full value: 300 draws, within 4 standard errors."""
    spec = parse_problem({"type": "elasticity", "materials": {
        "matrix": {"E": 3.5, "nu": 0.35}, "inclusion": {"E": 70.0, "nu": 0.22}},
        "bcs": [{"boundary": "x0", "type": "roller", "component": 0, "value": 0.0},
                {"boundary": "x1", "type": "roller", "component": 0, "value": 0.01}]})
    disc = coupling.discretise(fem.build_problem(rve, spec), "autograd", boundary="soft",
                               dtype=torch.float64, interface_distance=True)
    res = disc.residual
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, 3)).double()
    full = _terms(res, net)
    n = res.batch_size()
    draws = [_terms(res, net, torch.randperm(n)[: n // 4]) for _ in range(300)]
    for k, v in full.items():
        vals = np.array([d[k] for d in draws])
        se = vals.std(ddof=1) / np.sqrt(len(vals))
        assert abs(vals.mean() - v) < 4 * se + 1e-12 * abs(v), (k, vals.mean(), v, se)
        assert vals.std() > 0  # really sampled
