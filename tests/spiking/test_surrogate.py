"""Surrogate family: exact step forward, documented backward, gradchecks where smooth."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

from spiking import SURROGATE_KINDS, VSN, Surrogate

F64 = torch.float64


# The formulas of the docstring, written out element-wise and independently of spiking.
def g_formula(kind, k, x):
    if kind == "arctan":
        return (k / 2) / (1 + (math.pi * k * x / 2) ** 2)
    if kind == "fast_sigmoid":
        return 1 / (1 + k * abs(x)) ** 2
    if kind == "sigmoid":
        return k / (1 + math.exp(-k * x)) / (1 + math.exp(k * x))  # k σ(kx)(1 − σ(kx))
    if kind == "triangle":
        return k * max(0.0, 1 - k * abs(x))
    return 1.0


def primitive_formula(kind, k, x):
    """Antiderivative of g_formula (pure Python), used as the smooth forward in gradcheck."""
    if kind == "arctan":
        return 0.5 + torch.atan(math.pi * k * x / 2) / math.pi
    if kind == "fast_sigmoid":
        return x / (1 + k * x.abs())
    if kind == "sigmoid":
        return torch.sigmoid(k * x)
    if kind == "triangle":
        c = torch.clamp(x, -1 / k, 1 / k)
        return 0.5 + k * c - 0.5 * k * k * c * c.abs()
    return x


GRID = torch.linspace(-3, 3, 601, dtype=F64)
SLOPES = [0.5, 2.0, 10.0, 25.0]


@pytest.mark.parametrize("kind", SURROGATE_KINDS)
@pytest.mark.parametrize("k", SLOPES)
def test_forward_is_exact_heaviside(kind, k):
    x = torch.cat([GRID, torch.tensor([0.0, -0.0, 1e-300, -1e-300, 5e-324], dtype=F64)])
    s = Surrogate(kind, k)(x)
    assert s.dtype == F64
    assert s.tolist() == [1.0 if v > 0 else 0.0 for v in x.tolist()]


@pytest.mark.parametrize("kind", SURROGATE_KINDS)
@pytest.mark.parametrize("k", SLOPES)
def test_backward_equals_formula_on_grid(kind, k):
    x = GRID.clone().requires_grad_()
    upstream = torch.linspace(0.5, 2.0, x.numel(), dtype=F64)
    (Surrogate(kind, k)(x) * upstream).sum().backward()
    expected = torch.tensor([g_formula(kind, k, v) for v in GRID.tolist()], dtype=F64)
    torch.testing.assert_close(x.grad, expected * upstream, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(Surrogate(kind, k).derivative(GRID), expected,
                               rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", SURROGATE_KINDS)
@pytest.mark.parametrize("k", [0.7, 3.0])
def test_gradcheck_backward_is_derivative_of_documented_primitive(kind, k):
    """Forward = smooth primitive F_k, backward = the spike's surrogate: gradcheck then
    compares our backward with finite differences of F_k, i.e. checks g_k = F_k'."""
    spike = Surrogate(kind, k)

    def relaxed(x):
        s = spike(x)
        return primitive_formula(kind, k, x).detach() + (s - s.detach())

    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(40, generator=gen, dtype=F64) * 4 - 2).requires_grad_()
    assert torch.autograd.gradcheck(relaxed, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(spike.primitive(x.detach()),
                               primitive_formula(kind, k, x.detach()), rtol=0, atol=1e-15)


def vsn_min_margin(z, beta, theta, steps):
    """Smallest |m - θ| the recurrence meets, per element (plain loop)."""
    m = torch.zeros_like(z)
    margin = torch.full_like(z, math.inf)
    for _ in range(steps):
        m = beta * m + z
        margin = torch.minimum(margin, (m - theta).abs())
        m = torch.where(m > theta, torch.zeros_like(m), m)
    return margin


@pytest.mark.parametrize("phi", ["identity", "tanh"])
def test_gradcheck_vsn_layer_away_from_threshold(phi):
    """With the compact triangle surrogate (support |x| < 1/k) the VSN's spike pattern is
    locally constant wherever every |m − θ| > 1/k, so its true derivative exists and the
    surrogate contributes exactly 0: gradcheck of the whole layer (z, β, θ) then checks the
    reset path and the φ chain rule of the implementation."""
    k, steps, n = 20.0, 4, 6
    gen = torch.Generator().manual_seed(1)
    z = torch.rand(30, n, generator=gen, dtype=F64) * 1.5
    beta = torch.rand(n, generator=gen, dtype=F64) * 0.8 + 0.1
    theta = torch.rand(n, generator=gen, dtype=F64) * 0.8 + 0.2
    keep = (vsn_min_margin(z, beta, theta, steps) > 2.0 / k).all(dim=1)
    z = z[keep][:12]
    assert z.shape[0] >= 6
    vsn = VSN(n, num_steps=steps, beta=beta, threshold=theta, activation=phi,
              learn_beta=True, learn_threshold=True, surrogate=Surrogate("triangle", k),
              dtype=F64)

    def layer(z, b, th):
        return functional_call(vsn, {"raw_beta": b, "threshold": th}, (z,))

    args = (z.clone().requires_grad_(), beta.clone().requires_grad_(),
            theta.clone().requires_grad_())
    assert torch.autograd.gradcheck(layer, args, eps=1e-7, atol=1e-6)


def test_surrogate_validation():
    with pytest.raises(ValueError, match="unknown kind 'atan'"):
        Surrogate("atan")
    with pytest.raises(ValueError, match="slope must be a positive"):
        Surrogate("arctan", 0.0)
    assert Surrogate("fast_sigmoid").slope == 25.0


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(SURROGATE_KINDS),
    k=st.floats(0.05, 50.0),
    x=st.floats(-20.0, 20.0),
)
def test_surrogate_shape(kind, k, x):
    """Every surrogate is non-negative, even, and peaks at the threshold."""
    s = Surrogate(kind, k)
    g = s.derivative(torch.tensor([x, -x, 0.0], dtype=F64)).tolist()
    assert g[0] >= 0.0
    assert g[0] == pytest.approx(g[1], rel=1e-12, abs=1e-300)
    assert g[0] <= g[2] * (1 + 1e-12)
    peak = {"arctan": k / 2, "fast_sigmoid": 1.0, "sigmoid": k / 4, "triangle": k,
            "straight_through": 1.0}[kind]
    assert g[2] == pytest.approx(peak, rel=1e-12)


@pytest.mark.parametrize("kind", ["arctan", "sigmoid", "triangle"])
@pytest.mark.parametrize("k", SLOPES)
def test_normalised_surrogates_integrate_to_one(kind, k):
    """∫ g_k = 1 (trapezoid on a fine grid; arctan's heavy tails in closed form)."""
    L = 40.0 / k
    x = torch.linspace(-L, L, 400_001, dtype=F64)
    integral = float(torch.trapezoid(Surrogate(kind, k).derivative(x), x))
    if kind == "arctan":
        expected = 2 / math.pi * math.atan(math.pi * k * L / 2)
    else:
        expected = 1.0
    assert integral == pytest.approx(expected, rel=1e-8)
