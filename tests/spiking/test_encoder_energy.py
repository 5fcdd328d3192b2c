"""Population encoder: its code, its hand-counted energy, the two energy conventions, the
zero-activity floor and the regulariser's per-event weights."""

import json

import pytest
import torch

import spiking
from spiking.encoders import PopulationEncoder
from spiking.energy import (
    EnergyTable,
    OpCounts,
    count_energy,
    encoder_ops,
    energy_report,
)
from spiking.event_costs import event_weights
from spiking.monitor import ActivityMonitor, ActivityPenalty


def test_hat_code_interpolates_and_onehot_picks_the_nearest_cell():
    enc = PopulationEncoder(2, 5)  # centres -1, -0.5, 0, 0.5, 1
    e = enc(torch.tensor([[0.25, 1.0], [-2.0, -0.75]]))
    assert e.shape == (2, 10)
    assert e[0].tolist() == [0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 1.0]
    assert e[1].tolist() == [1.0, 0, 0, 0, 0, 0.5, 0.5, 0, 0, 0]  # clamped to -1
    # the hat code reproduces a linear function exactly: Σ_k c_k e_k = x
    x = torch.rand(100, 2) * 2 - 1
    c = torch.linspace(-1, 1, 5)
    assert torch.allclose(enc(x).reshape(100, 2, 5) @ c, x, atol=1e-6)
    one = PopulationEncoder(1, 5, "onehot")
    assert one(torch.tensor([[0.3], [0.2]])).tolist() == [[0, 0, 0, 1.0, 0], [0, 0, 1.0, 0, 0]]
    assert (one.graded, enc.graded, enc.events_per_point, one.events_per_point) == (
        False, True, 4, 1)


def test_encoder_config_errors_are_one_line():
    with pytest.raises(ValueError, match=r"network.encoder.levels = 1"):
        PopulationEncoder.from_dict({"levels": 1}, 2)
    with pytest.raises(ValueError, match=r"network.encoder.kind = 'x'"):
        PopulationEncoder.from_dict({"kind": "x"}, 2)
    with pytest.raises(ValueError, match=r"network.encoder.size: unknown key"):
        PopulationEncoder.from_dict({"size": 3}, 2)
    with pytest.raises(ValueError, match=r"encoder.in_dim = 3"):
        spiking.MLP(2, [4], encoder=PopulationEncoder(3, 4))


@pytest.mark.parametrize("mode", ["hat", "onehot"])
def test_encoder_network_counts_match_hand_counts(mode):
    # d = 2 features, K = 4 cells each (F = 8), one VSN layer of 3, T_s = 2, 2 events out
    rep = count_energy([8, 3, 1], neuron="vsn", steps=2, events=[2.0],
                       encoder=(mode, 2, 4))
    names = [la.name for la in rep.layers]
    assert names == ["encoder", "hidden0", "readout"]
    enc, h0, ro = rep.layers
    if mode == "hat":  # per feature 1 MAC + 3 ACC; reads x, a, b; writes 2 values + index
        assert enc.snn == OpCounts(mac=2, acc=6, reads=4, writes=6)
        # 4 graded events × 3 fan-out MACs, reads 12 weights + 4 events + 3 biases +
        # membrane 2·3 + β, θ 2·3; accumulates: 3 bias + 2·3 membrane; writes 2·3 + 2
        assert h0.snn == OpCounts(mac=12, acc=9, reads=31, writes=8)
    else:  # 2 binary events × 3 fan-out accumulates
        assert enc.snn == OpCounts(mac=2, acc=2, reads=4, writes=2)
        assert h0.snn == OpCounts(mac=0, acc=15, reads=23, writes=8)
    assert enc.ann == OpCounts()  # the equal ANN has no encoder ...
    assert h0.ann == OpCounts(mac=6, acc=3, reads=11, writes=3)  # ... and takes 2 dense values
    assert ro.snn == OpCounts(mac=2, acc=1, reads=5, writes=1)
    assert ro.ann == OpCounts(mac=3, acc=1, reads=7, writes=1)
    t = EnergyTable()
    assert rep.ann_pj == pytest.approx(t.price(h0.ann) + t.price(ro.ann))


def test_encoder_network_report_from_a_monitored_pass():
    vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.05)  # noqa: E731
    net = spiking.MLP(2, [6, 5], unit=vsn, encoder=PopulationEncoder(2, 8), seed=0,
                      bounds=[[0, 0], [1, 1]])
    assert net.widths == [16, 6, 5, 1]
    with ActivityMonitor(net) as mon:
        net(torch.rand(40, 2))
    rep = energy_report(net, mon)
    assert rep.layers[0].snn == encoder_ops(2, "hat")
    assert rep.layers[1].events_in == 4.0 and rep.layers[1].ann.mac == 2 * 6
    ann = spiking.equal_shape_ann(net)
    assert ann.encoder is None and ann.widths == [2, 6, 5, 1]


def test_two_conventions_and_the_floor():
    widths, T = [66, 64, 64, 64, 1], 1
    rep = count_energy(widths, neuron="vsn", steps=T, events=[10.0, 10.0, 10.0],
                       fourier=(2, 32))
    d = json.loads(json.dumps(rep.to_dict()))
    co = EnergyTable.compute_only()
    ann_c = sum(co.price(la.ann) for la in rep.layers)
    snn_c = sum(co.price(la.snn) for la in rep.layers)
    assert d["compute_only"]["ratio"] == pytest.approx(snn_c / ann_c)
    assert d["compute_only"]["ratio"] < d["ratio"]  # memory traffic weighs on the SNN side
    for row in d["layers"]:
        assert row["snn_compute_pj"] == pytest.approx(co.price(OpCounts(**row["snn"])))
        if row["ann_pj"]:
            assert row["ratio"] == pytest.approx(row["snn_pj"] / row["ann_pj"])
    zero = count_energy(widths, neuron="vsn", steps=T, events=[0.0] * 3, fourier=(2, 32))
    assert d["floor"]["ratio"] == pytest.approx(zero.ratio)
    assert d["floor"]["ratio_compute"] == pytest.approx(zero.compute_only().ratio)
    assert 0 < d["floor"]["ratio"] < d["ratio"]
    md = rep.to_markdown()
    assert f"**{d['compute_only']['ratio']:.3f}**" in md and "floor at zero activity" in md


def test_event_weights_price_one_event_relative_to_the_ann():
    vsn = lambda n: spiking.VSN(n, num_steps=2)  # noqa: E731
    net = spiking.MLP(3, [4, 5], unit=vsn, seed=0)
    w = event_weights(net)
    ann = count_energy(net.widths, neuron="vsn", steps=2, events=[0.0, 0.0]).ann_pj
    # an event of hidden0: its write + 5 fan-out MACs + 5 weight reads + 1 event read
    assert w[0] == pytest.approx((5.0 + 5 * 4.6 + 6 * 5.0) / ann)
    assert w[1] == pytest.approx((5.0 + 1 * 4.6 + 2 * 5.0) / ann)  # into the readout


def test_penalty_is_differentiable_and_raises_learnable_thresholds():
    vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.0,  # noqa: E731
                                learn_threshold=True)
    net = spiking.MLP(2, [8, 8], unit=vsn, seed=0, bounds=[[0, 0], [1, 1]])
    pen = ActivityPenalty(net, 1.0, [1.0, 1.0])
    x = torch.rand(30, 2)
    with ActivityMonitor(net) as mon, pen.counting():
        net(x)
    penalty, logged = pen.terms()
    spikes = {k: v.spikes / 30 for k, v in mon.layers().items()}  # monitors still count
    assert float(logged["events/units.0"]) == pytest.approx(spikes["units.0"])
    assert float(penalty.detach()) == pytest.approx(spikes["units.0"] + spikes["units.1"])
    penalty.backward()
    g = net.units[0].threshold.grad
    assert g is not None and (g <= 0).all() and g.sum() < 0  # raising θ lowers the count
    target = ActivityPenalty(net, 1.0, [1.0, 1.0], target=1.0)  # nobody exceeds rate 1
    with target.counting():
        net(x)
    assert float(target.terms()[0]) == 0.0
