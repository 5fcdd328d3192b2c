"""Activity monitors: zero-in-zero-out, counts equal a brute-force recount, off = inert."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spiking import LIF, VSN, ActivityMonitor, build_mlp

F64 = torch.float64


def brute_force_counts(net, x):
    """Independent NumPy re-run of a VSN/LIF MLP: spikes and nonzero outputs per layer
    and point, counted neuron by neuron, step by step."""
    h = net.features(x).detach().numpy()
    counts = []
    for lin, unit in zip(net.linears, net.units, strict=False):
        z = h @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
        beta = unit.beta.detach().numpy()
        theta = unit.threshold.detach().numpy()
        P, n = z.shape
        spikes = np.zeros(P, dtype=int)
        events = np.zeros(P, dtype=int)
        out = np.zeros_like(z)
        for p in range(P):
            for j in range(n):
                m = 0.0
                for _ in range(unit.num_steps):
                    m = beta[j] * m + z[p, j]
                    fired = m > theta[j]
                    if isinstance(unit, VSN):
                        y = unit.activation(torch.tensor(z[p, j] * fired, dtype=F64)).item()
                        m = 0.0 if fired else m
                    else:
                        y = float(fired)
                        if fired:
                            m = m - theta[j] if unit.reset == "subtract" else 0.0
                    spikes[p] += int(fired)
                    events[p] += int(y != 0)
                    out[p, j] += y / unit.num_steps
        counts.append((spikes, events))
        h = out
    return counts


@pytest.mark.parametrize(
    "neuron, options",
    [("vsn", dict(activation="tanh", beta=0.8, threshold=0.05, num_steps=3)),
     ("vsn", dict(activation="relu", beta=1.0, threshold=0.2, num_steps=4)),
     ("lif", dict(beta=0.9, threshold=0.1, num_steps=5, reset="zero"))],
)
def test_counters_equal_brute_force(neuron, options):
    net = build_mlp(2, 1, [7, 5], neuron=neuron, seed=3, dtype=F64,
                    bounds=[[0, 0], [2, 1]], **options)
    x = torch.rand(40, 2, generator=torch.Generator().manual_seed(4), dtype=F64) * torch.tensor(
        [2.0, 1.0], dtype=F64)
    with ActivityMonitor(net) as mon:
        net(x)
    ref = brute_force_counts(net, x)
    layers = mon.layers()
    for (name, la), (spikes, events), unit in zip(layers.items(), ref, net.units, strict=True):
        T, n = unit.num_steps, unit.num_neurons
        assert la.spikes == spikes.sum() and la.events == events.sum()
        assert la.points == 40 and la.neuron_steps == 40 * n * T
        assert la.activity == pytest.approx(spikes.sum() / (40 * n * T), abs=1e-15)
        assert 0 < la.activity < 1  # the test is not vacuous
        np.testing.assert_allclose(mon.per_point(name).numpy(), spikes / (n * T), atol=1e-15)
    pooled = sum(s for s, _ in ref) / sum(u.num_neurons * u.num_steps for u in net.units)
    np.testing.assert_allclose(mon.per_point().numpy(), pooled, atol=1e-15)
    total = sum(int(s.sum()) for s, _ in ref)
    assert mon.mean_activity() == pytest.approx(
        total / sum(40 * u.num_neurons * u.num_steps for u in net.units), abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    neuron=st.sampled_from(["vsn", "lif"]),
    hidden=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    steps=st.integers(1, 4),
    threshold=st.floats(0.0, 2.0, exclude_min=True),  # a spiking threshold is > 0 (MLPConfig)
    points=st.integers(1, 8),
)
def test_zero_input_zero_output_zero_activity(neuron, hidden, steps, threshold, points):
    """With zero biases, zero coordinates give zero currents: no spike anywhere, output 0."""
    net = build_mlp(3, 2, hidden, neuron=neuron, num_steps=steps, threshold=threshold,
                    activation="tanh" if neuron == "vsn" else "identity", seed=0, dtype=F64)
    with ActivityMonitor(net) as mon:
        y = net(torch.zeros(points, 3, dtype=F64))
    assert torch.count_nonzero(y) == 0
    assert mon.mean_activity() == 0.0
    assert all(la.spikes == 0 and la.events == 0 for la in mon.layers().values())
    assert torch.count_nonzero(mon.per_point()) == 0


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    steps=st.integers(1, 5),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_counts_conserved_over_passes(sizes, steps, n, seed):
    """Totals over several passes = Σ per-point counts = Σ over passes recounted alone."""
    gen = torch.Generator().manual_seed(seed)
    vsn = VSN(n, num_steps=steps, beta=0.5, threshold=0.3, dtype=F64)
    batches = [torch.randn(p, n, generator=gen, dtype=F64) for p in sizes]
    with ActivityMonitor(vsn) as mon:
        for b in batches:
            vsn(b)
    per_point = mon.per_point("")
    assert per_point.shape == (sum(sizes),)
    la = mon.layers()[""]
    assert la.spikes == pytest.approx(float(per_point.sum()) * n * steps, abs=1e-9)
    alone = 0
    for b in batches:
        with ActivityMonitor(vsn) as single:
            vsn(b)
        alone += single.layers()[""].spikes
    _, s = vsn.run(torch.cat(batches).expand(steps, -1, -1))
    assert la.spikes == alone == int(s.sum())


def test_monitor_off_is_inert_and_does_not_change_results():
    net = build_mlp(2, 3, [8, 8], neuron="vsn", activation="tanh", num_steps=2,
                    threshold=0.05, seed=1, dtype=F64)
    x = torch.rand(20, 2, dtype=F64)
    y_off = net(x)
    g_off = torch.autograd.grad(y_off.sum(), net.linears[0].weight)[0]
    mon = ActivityMonitor(net)
    with mon:
        y_on = net(x)
        g_on = torch.autograd.grad(y_on.sum(), net.linears[0].weight)[0]
    assert torch.equal(y_on, y_off) and torch.equal(g_on, g_off)
    assert all(u.record is None for u in net.units)  # detached after the block
    before = mon.layers()
    net(x)  # not recorded
    assert mon.layers() == before
    with mon:  # re-entering clears
        pass
    assert all(la.points == 0 for la in mon.layers().values())


def test_monitor_records_only_detached_tensors():
    lif = LIF(4, num_steps=3, threshold=0.2)
    x = torch.rand(6, 4, requires_grad=True)
    with ActivityMonitor(lif) as mon:
        lif(x)
    for sp, ev, _ in mon.records[""].passes:
        assert not sp.requires_grad and not ev.requires_grad


def test_two_monitors_on_one_layer_refused():
    vsn = VSN(2)
    with ActivityMonitor(vsn), pytest.raises(RuntimeError, match="already monitored"):
        ActivityMonitor(vsn).start()
