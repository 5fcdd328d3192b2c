"""C-LIF neuron (spiking.neurons.CLIF) and the CFQ solver (spiking.cfq): signed integer
counts, exact and float paths alike, exact conservation in integer arithmetic,
antisymmetry, the closed budget with open boundaries and sources, the float shadow path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fem.fv_geometry import grid_geometry, stable_dt
from spiking import CLIF, CLIFSolver, FluxNet, trunc_spike
from spiking.cfq import FIXED_VALUE, PRESCRIBED_FLUX


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _random_field(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, generator=g, dtype=torch.float64) * 2.0


@pytest.mark.parametrize("seed", [0, 1])
def test_insulated_1d_total_exactly_invariant_10000_steps(seed):
    geo = grid_geometry([40])
    net = FluxNet([12, 12], scale=1.0, seed=seed)  # untrained: arbitrary antisymmetric flux
    sol = CLIFSolver(geo, net, quantum=1e-5, dt=stable_dt(geo, 1.0))
    state = sol.init_state(_random_field(40, seed))
    start = state.quanta.clone()
    moved = []
    sol.rollout(state, 10_000, callback=lambda s, stats: moved.append(stats.quanta_moved))
    assert state.quanta.dtype == torch.int64
    assert state.total() - int(start.sum()) == 0
    assert state.drift() == 0 and state.boundary_in == 0 and state.source_in == 0
    assert sum(moved) > 10_000  # quanta really moved every step on average
    assert not torch.equal(state.quanta, start)


def test_open_boundaries_and_sources_budget_closes_exactly():
    geo = grid_geometry([12, 10])
    kind = np.zeros(len(geo.boundary_cells), dtype=np.int64)
    kind[geo.boundary("x0")] = FIXED_VALUE
    kind[geo.boundary("y1")] = PRESCRIBED_FLUX
    data = torch.zeros(len(kind), dtype=torch.float64)
    data[geo.boundary("x0")] = 3.0
    data[geo.boundary("y1")] = -0.7  # outflow
    src = torch.linspace(-1.0, 2.0, geo.num_cells, dtype=torch.float64)
    sol = CLIFSolver(geo, FluxNet([8], seed=5), 1e-6, stable_dt(geo, 1.0), beta=0.9,
                     bc_kind=kind, bc_data=lambda t: data, source=lambda t: src)
    state = sol.init_state(_random_field(geo.num_cells, 3))
    n0 = state.total()
    sol.rollout(state, 3000)
    assert state.boundary_in != 0 and state.source_in != 0
    assert state.total() - n0 == state.boundary_in + state.source_in  # interior == counted
    assert state.drift() == 0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=20), st.integers(0, 10**6),
       st.booleans())
def test_flux_antisymmetric_exactly(values, seed, geometry):
    a = torch.tensor(values, dtype=torch.float64)
    b = a.flip(0)
    w = torch.rand(len(values), generator=torch.Generator().manual_seed(seed),
                   dtype=torch.float64) + 0.1
    net = FluxNet([10, 10], scale=2.0, geometry=geometry, seed=seed)
    with torch.no_grad():
        assert torch.equal(net(a, b, w), -net(b, a, w))
        assert torch.all(net(a, a, w) == 0)


def test_flux_is_translation_and_time_invariant():
    """Shifting the grid, or starting later, changes nothing: no position or time input."""
    net = FluxNet([8], seed=1)
    u0 = _random_field(20, 7)
    out = []
    for lo, t0 in ((0.0, 0.0), (5.0, 3.3)):
        geo = grid_geometry([20], [lo], [lo + 1.0])
        sol = CLIFSolver(geo, net, 1e-5, 1e-4)
        state = sol.init_state(u0, t0)
        sol.rollout(state, 200)
        out.append(state.quanta)
    assert torch.equal(out[0], out[1])


def test_float_shadow_path_equals_integer_path():
    geo = grid_geometry([6, 5])
    kind = np.full(len(geo.boundary_cells), FIXED_VALUE)
    data = torch.ones(len(kind), dtype=torch.float64)
    src = torch.full((geo.num_cells,), 0.5, dtype=torch.float64)
    sol = CLIFSolver(geo, FluxNet([8], seed=2), 1e-5, stable_dt(geo, 1.0), bc_kind=kind,
                     bc_data=lambda t: data, source=lambda t: src)
    u0 = _random_field(geo.num_cells, 1)
    state = sol.init_state(u0)
    sol.rollout(state, 50)
    u_float = sol.rollout_float(u0[None], torch.zeros(1), 50)[0]
    assert torch.equal(u_float, sol.values(state.quanta))


def test_gradients_flow_through_spikes():
    geo = grid_geometry([10])
    net = FluxNet([8], seed=0)
    sol = CLIFSolver(geo, net, 1e-6, 1e-3)
    u = sol.rollout_float(_random_field(10, 2)[None], torch.zeros(1), 5)
    (u**2).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("kind", ["straight_through", "arctan", "triangle"])
def test_trunc_spike_forward_is_signed_integer_count(kind):
    v = torch.tensor([-2.7, -1.0, -0.4, 0.0, 0.3, 1.0, 1.9, 12.5], requires_grad=True)
    s = trunc_spike(v, kind, 1.0)
    assert s.tolist() == [-2.0, -1.0, -0.0, 0.0, 0.0, 1.0, 1.0, 12.0]
    s.sum().backward()
    assert torch.isfinite(v.grad).all()
    if kind == "straight_through":
        assert torch.all(v.grad == 1)


def test_bad_input_is_rejected():
    geo = grid_geometry([4])
    with pytest.raises(ValueError, match="quantum"):
        CLIFSolver(geo, FluxNet(), 0.0, 1e-3)
    with pytest.raises(ValueError, match="bc_data"):
        CLIFSolver(geo, FluxNet(), 1e-3, 1e-3, bc_kind=np.array([1, 0]))
    with pytest.raises(ValueError, match="surrogate"):
        trunc_spike(torch.ones(2), "nope")
    with pytest.raises(ValueError, match="threshold"):
        CLIF(3, threshold=2.0)
    with pytest.raises(ValueError, match="beta"):
        CLIF(3, beta=1.5)


# ---- the neuron ------------------------------------------------------------------------------
def test_clif_step_counts_and_remainder():
    """v ← βv + z; s = trunc(v) (signed); v ← v − s: the remainder carries over."""
    neuron = CLIF(4, beta=0.5)
    z = torch.tensor([2.75, -1.5, 0.25, -0.99], dtype=torch.float64)
    mem = torch.tensor([0.5, 0.5, 0.5, -0.5], dtype=torch.float64)
    out, s, mem = neuron.step(z, mem)
    assert s.tolist() == [3.0, -1.0, 0.0, -1.0] and torch.equal(out, s)
    assert mem.tolist() == [0.0, -0.25, 0.5, -0.24]  # 0.5·0.5 + z − s
    s_int, _, mem_int = neuron.step(z, torch.tensor([0.5, 0.5, 0.5, -0.5], dtype=torch.float64),
                                    exact=True)
    assert s_int.dtype == torch.int64 and s_int.tolist() == [3, -1, 0, -1]
    assert torch.equal(mem_int, mem)


def test_clif_exact_path_equals_float_path_over_many_steps():
    """Same inputs, 2000 steps: identical counts and bit-identical membranes."""
    g = torch.Generator().manual_seed(4)
    neuron = CLIF(50, beta=torch.linspace(0.5, 1.0, 50))
    z_seq = (torch.rand(2000, 50, generator=g, dtype=torch.float64) - 0.45) * 3.0
    v_f = v_i = torch.zeros(50, dtype=torch.float64)
    sent_f = torch.zeros(50, dtype=torch.float64)
    sent_i = torch.zeros(50, dtype=torch.int64)
    for z in z_seq:
        s_f, _, v_f = neuron.step(z, v_f)
        s_i, _, v_i = neuron.step(z, v_i, exact=True)
        sent_f, sent_i = sent_f + s_f, sent_i + s_i
    assert torch.equal(v_f, v_i) and torch.equal(sent_f.to(torch.int64), sent_i)
    # β = 1 neurons conserve what they integrate: Σ z = Σ s + v, |v| < 1
    total = z_seq[:, -1].sum()
    assert abs(float(total - sent_f[-1] - v_f[-1])) < 1e-9 and abs(float(v_f[-1])) < 1


def test_clif_surrogate_gradient_and_activity_record():
    from spiking import ActivityMonitor

    neuron = CLIF(3, surrogate="arctan", slope=2.0)
    z = torch.tensor([[1.2, -0.3, 2.9]], dtype=torch.float64, requires_grad=True)
    with ActivityMonitor(neuron) as mon:
        out = neuron(z)  # one step (num_steps = 1)
    assert out.tolist() == [[1.0, 0.0, 2.0]]
    out.sum().backward()
    assert torch.isfinite(z.grad).all() and float(z.grad.abs().sum()) > 0
    layer = next(iter(mon.layers().values()))
    assert layer.spikes == 2 and layer.neuron_steps == 3  # two of three neurons fired
