"""C-LIF / CFQ (spiking.clif): exact conservation in integer arithmetic, antisymmetry,
the closed budget with open boundaries and sources, the float shadow path, grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spiking.clif import (
    FIXED_VALUE,
    PRESCRIBED_FLUX,
    CLIFSolver,
    FluxNet,
    grid_cell_average,
    grid_geometry,
    stable_dt,
    trunc_spike,
)


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


def test_grid_geometry_measures():
    geo = grid_geometry([4, 3, 2], [0, 0, 0], [2.0, 1.5, 1.0])
    assert math.isclose(geo.volumes.sum(), 3.0)
    assert len(geo.pairs) == 3 * 3 * 2 + 4 * 2 * 2 + 4 * 3 * 1
    assert math.isclose(geo.boundary_areas.sum(), 2 * (2 * 1.5 + 2 * 1 + 1.5 * 1))
    np.testing.assert_allclose(geo.areas[:18], 0.5 * 0.5)
    # a linear function's cell average is its value at the centroid
    avg = grid_cell_average(geo, lambda x: 1 + x[0] - 2 * x[2], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(avg, 1 + geo.centroids[:, 0] - 2 * geo.centroids[:, 2])


def test_bad_input_is_rejected():
    geo = grid_geometry([4])
    with pytest.raises(ValueError, match="quantum"):
        CLIFSolver(geo, FluxNet(), 0.0, 1e-3)
    with pytest.raises(ValueError, match="bc_data"):
        CLIFSolver(geo, FluxNet(), 1e-3, 1e-3, bc_kind=np.array([1, 0]))
    with pytest.raises(ValueError, match="surrogate"):
        trunc_spike(torch.ones(2), "nope")
