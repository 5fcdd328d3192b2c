"""VSN / LIF / IF dynamics against hand computations of the published recurrences."""

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spiking import IF, LIF, VSN

F64 = torch.float64


def vsn_reference(zs, beta, theta, phi):
    """Plain-Python VSN: m = βm + z; s = [m > θ]; y = φ(z s); m = 0 where s = 1."""
    m, ys, ss = 0.0, [], []
    for z in zs:
        m = beta * m + z
        s = 1.0 if m > theta else 0.0
        ys.append(phi(z * s))
        ss.append(s)
        if s:
            m = 0.0
    return ys, ss


def lif_reference(zs, beta, theta, reset):
    m, ss = 0.0, []
    for z in zs:
        m = beta * m + z
        s = 1.0 if m > theta else 0.0
        if s and reset == "subtract":
            m -= theta
        elif s and reset == "zero":
            m = 0.0
        ss.append(s)
    return ss


PHI = {"identity": lambda v: v, "tanh": math.tanh}


# Worked by hand, step by step (β, θ, z, T → per-step outputs for φ = identity):
# β=.5, θ=1, z=.6: m = .6, .9, 1.05 (fire, y=.6, reset), .6          → y = 0,0,.6,0
# β=1,  θ=.5, z=.3: m = .3, .6 (fire, reset), .3, .6 (fire)           → y = 0,.3,0,.3
# β=0,  θ=.2, z=.25: m = .25 every step, fires every step             → y = .25 ×4
# β=.9, θ=2,  z=1:  m = 1, 1.9, 2.71 (fire, reset), 1                 → y = 0,0,1,0
# β=1,  θ=.5, z=-.7: memory only decreases, never fires                → y = 0 ×4
HAND = [
    (0.5, 1.0, 0.6, [0.0, 0.0, 0.6, 0.0]),
    (1.0, 0.5, 0.3, [0.0, 0.3, 0.0, 0.3]),
    (0.0, 0.2, 0.25, [0.25, 0.25, 0.25, 0.25]),
    (0.9, 2.0, 1.0, [0.0, 0.0, 1.0, 0.0]),
    (1.0, 0.5, -0.7, [0.0, 0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("phi", ["identity", "tanh"])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_vsn_hand_worked_cases(phi, steps):
    f = PHI[phi]
    beta = torch.tensor([c[0] for c in HAND], dtype=F64)
    theta = torch.tensor([c[1] for c in HAND], dtype=F64)
    z = torch.tensor([[c[2] for c in HAND]], dtype=F64)
    vsn = VSN(len(HAND), num_steps=steps, beta=beta, threshold=theta, activation=phi, dtype=F64)
    out = vsn(z)[0]
    for j, (_, _, zj, ys) in enumerate(HAND):
        expected = sum(f(y) for y in ys[:steps]) / steps
        assert abs(float(out[j]) - expected) <= 1e-12, (j, zj)


@pytest.mark.parametrize("phi", ["identity", "tanh"])
@pytest.mark.parametrize("steps", [1, 2, 4])
@pytest.mark.parametrize("beta", [0.0, 0.3, 0.75, 1.0])
@pytest.mark.parametrize("theta", [0.0, 0.25, 0.8])
def test_vsn_matches_reference_recurrence(phi, steps, beta, theta):
    gen = torch.Generator().manual_seed(7)
    z = torch.rand(16, 5, generator=gen, dtype=F64) * 2.0 - 0.6
    vsn = VSN(5, num_steps=steps, beta=beta, threshold=theta, activation=phi, dtype=F64)
    out = vsn(z)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            ys, _ = vsn_reference([float(z[i, j])] * steps, beta, theta, PHI[phi])
            assert abs(float(out[i, j]) - sum(ys) / steps) <= 1e-12


@pytest.mark.parametrize("phi", ["identity", "tanh"])
def test_vsn_sequence_input_and_per_neuron_parameters(phi):
    gen = torch.Generator().manual_seed(3)
    T, n = 6, 4
    z_seq = torch.rand(T, 3, n, generator=gen, dtype=F64) * 1.6 - 0.4
    beta = [0.0, 0.4, 0.9, 1.0]
    theta = [0.1, 0.5, 0.7, 1.2]
    vsn = VSN(n, beta=beta, threshold=theta, activation=phi, dtype=F64)
    y_seq, s_seq = vsn.run(z_seq)
    for b in range(3):
        for j in range(n):
            ys, ss = vsn_reference(z_seq[:, b, j].tolist(), beta[j], theta[j], PHI[phi])
            got = y_seq[:, b, j].tolist()
            assert max(abs(a - c) for a, c in zip(got, ys, strict=True)) <= 1e-12
            assert s_seq[:, b, j].tolist() == ss


def test_vsn_explicit_state_step_equals_forward():
    vsn = VSN(3, num_steps=5, beta=0.6, threshold=0.4, activation="tanh", dtype=F64)
    z = torch.tensor([[0.15, 0.5, 0.9]], dtype=F64)
    mem = vsn.init_state(z)
    total = torch.zeros_like(z)
    mems = []
    for _ in range(5):
        y, s, mem = vsn.step(z, mem)
        total += y
        mems.append(mem.clone())
        assert torch.all(mem[s == 1] == 0)  # reset to zero where it fired
    torch.testing.assert_close(total / 5, vsn(z), rtol=0, atol=1e-15)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("beta", [0.5, 0.9, 1.0])
def test_lif_matches_reference(reset, beta):
    gen = torch.Generator().manual_seed(11)
    z = torch.rand(10, 3, generator=gen, dtype=F64) * 1.5
    lif = LIF(3, num_steps=8, beta=beta, threshold=0.7, reset=reset, dtype=F64)
    out = lif(z)
    for i in range(10):
        for j in range(3):
            ss = lif_reference([float(z[i, j])] * 8, beta, 0.7, reset)
            assert abs(float(out[i, j]) - sum(ss) / 8) <= 1e-12


def test_if_rate_hand_worked():
    # IF, θ=1, z=0.3, subtract reset: m = .3 .6 .9 1.2→.2 .5 .8 1.1→.1 → 2 spikes in 8 steps.
    neuron = IF(1, num_steps=8, threshold=1.0, dtype=F64)
    assert float(neuron(torch.tensor([[0.3]], dtype=F64))) == pytest.approx(2 / 8, abs=1e-15)
    with pytest.raises(ValueError, match="beta is fixed"):
        IF(1, beta=0.5)


def test_vsn_refuses_activation_with_nonzero_at_zero():
    with pytest.raises(ValueError, match=r"'sigmoid' has φ\(0\) = 0.5"):
        VSN(3, activation="sigmoid")
    with pytest.raises(ValueError, match="φ"):
        VSN(3, activation=torch.cos)
    with pytest.raises(ValueError, match="unknown activation 'tahn'"):
        VSN(3, activation="tahn")
    VSN(3, activation=torch.sin)  # a custom callable with φ(0) = 0 is accepted


def test_beta_validation_and_clamping():
    with pytest.raises(ValueError, match="beta"):
        VSN(2, beta=1.5)
    with pytest.raises(ValueError, match="expected a scalar or 2 values"):
        VSN(2, beta=[0.1, 0.2, 0.3])
    vsn = VSN(2, num_steps=3, beta=0.5, threshold=0.9, learn_beta=True, dtype=F64)
    with torch.no_grad():
        vsn.raw_beta.copy_(torch.tensor([1.7, -0.4]))  # an optimiser step overshot
    ref = VSN(2, num_steps=3, beta=[1.0, 0.0], threshold=0.9, dtype=F64)
    z = torch.tensor([[0.4, 0.95]], dtype=F64)
    torch.testing.assert_close(vsn(z), ref(z), rtol=0, atol=0)


def test_learnable_parameters_receive_gradients():
    vsn = VSN(4, num_steps=3, beta=0.7, threshold=0.3, learn_beta=True, learn_threshold=True,
              activation="tanh", dtype=F64)
    fixed = VSN(4, num_steps=3, dtype=F64)
    assert {n for n, _ in vsn.named_parameters()} == {"raw_beta", "threshold"}
    assert list(fixed.parameters()) == [] and {n for n, _ in fixed.named_buffers()} == {
        "raw_beta", "threshold"}
    z = torch.linspace(0.1, 0.9, 4, dtype=F64).reshape(1, 4).requires_grad_()
    vsn(z).sum().backward()
    assert vsn.threshold.grad is not None and torch.all(vsn.threshold.grad != 0)
    assert vsn.raw_beta.grad is not None and torch.isfinite(vsn.raw_beta.grad).all()
    assert torch.all(z.grad != 0)


def test_neuron_pickles_and_state_dict_round_trip():
    vsn = VSN(3, beta=[0.1, 0.5, 1.0], threshold=0.2, activation="tanh", learn_threshold=True)
    clone = pickle.loads(pickle.dumps(vsn))
    z = torch.rand(5, 3)
    torch.testing.assert_close(clone(z), vsn(z))
    other = VSN(3, activation="tanh", learn_threshold=True)
    other.load_state_dict(vsn.state_dict())
    torch.testing.assert_close(other(z), vsn(z))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    batch=st.integers(1, 5),
    steps=st.integers(1, 6),
    beta=st.floats(0.0, 1.0),
    theta=st.floats(0.0, 3.0),
    phi=st.sampled_from(["identity", "tanh", "relu", "sin", "silu", "gelu", "softsign"]),
)
def test_vsn_zero_in_zero_out(n, batch, steps, beta, theta, phi):
    vsn = VSN(n, num_steps=steps, beta=beta, threshold=theta, activation=phi, dtype=F64)
    y, s = vsn.run(torch.zeros(steps, batch, n, dtype=F64))
    assert torch.count_nonzero(y) == 0 and torch.count_nonzero(s) == 0
    assert torch.count_nonzero(vsn(torch.zeros(batch, n, dtype=F64))) == 0
