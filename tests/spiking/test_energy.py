"""Energy accounting: counts equal the hand-written formulas; break-even where solved."""

import json
from fractions import Fraction

import pytest
import torch

from spiking import (
    ActivityMonitor,
    EnergyTable,
    OpCounts,
    break_even_activity,
    build_mlp,
    count_energy,
    energy_report,
)

F64 = torch.float64


def designed_net(neuron):
    """[2, 3, 4, 1] net, T = 3, β = 1, θ = 0.5, all weights 0 so the currents are the
    biases: layer 0 z = (1, .3, 0), layer 1 z = (2, .4, .2, -1) at every point."""
    kw = dict(activation="identity") if neuron == "vsn" else dict(reset="subtract")
    net = build_mlp(2, 1, [3, 4], neuron=neuron, num_steps=3, beta=1.0, threshold=0.5,
                    dtype=F64, seed=0, **kw)
    with torch.no_grad():
        for lin in net.linears:
            lin.weight.zero_()
        net.linears[0].bias.copy_(torch.tensor([1.0, 0.3, 0.0]))
        net.linears[1].bias.copy_(torch.tensor([2.0, 0.4, 0.2, -1.0]))
    return net


def run_monitored(net, points=5):
    x = torch.rand(points, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    with ActivityMonitor(net) as mon:
        net(x)
    return mon


# ANN of shape [2, 3, 4, 1] (same for both tests), per point:
#   hidden0 2→3: MAC 2·3 = 6,  ACC 3, reads 6+3+2 = 11,  writes 3
#   hidden1 3→4: MAC 3·4 = 12, ACC 4, reads 12+4+3 = 19, writes 4
#   readout 4→1: MAC 4,        ACC 1, reads 4+1+4 = 9,   writes 1
ANN = [OpCounts(6, 3, 11, 3), OpCounts(12, 4, 19, 4), OpCounts(4, 1, 9, 1)]


def test_vsn_counts_equal_hand_formulas():
    # Spike pattern by hand (VSN resets to 0):
    # layer 0: z=1 fires every step (3), z=.3: m=.3,.6*,.3 (1), z=0 never → E1 = 4
    # layer 1: z=2 (3), z=.4: .4,.8*,.4 (1), z=.2: .2,.4,.6* (1), z=-1 (0) → E2 = 5
    net = designed_net("vsn")
    mon = run_monitored(net)
    la = list(mon.layers().values())
    assert [la[0].events_per_point, la[1].events_per_point] == [4, 5]
    assert [la[0].activity, la[1].activity] == [pytest.approx(4 / 9), pytest.approx(5 / 12)]
    rep = energy_report(net, mon)
    T, E1, E2 = 3, 4, 5
    vsn = [
        # dense input: MAC 2·3; ACC 3 bias + T·3; reads 6 W + 2 x + 3 b + T·3 mem + 2·3 β,θ
        OpCounts(6, 3 + T * 3, 6 + 2 + 3 + T * 3 + 6, T * 3 + E1),
        # graded events: MAC E1·4; reads E1·4 W + E1 events + 4 b + T·4 mem + 8 β,θ
        OpCounts(E1 * 4, 4 + T * 4, E1 * 4 + E1 + 4 + T * 4 + 8, T * 4 + E2),
        # readout: MAC E2·1; ACC 1 bias; reads E2 W + E2 events + 1 b; writes 1
        OpCounts(E2, 1, E2 + E2 + 1, 1),
    ]
    assert [lay.ann for lay in rep.layers] == ANN
    assert [lay.snn for lay in rep.layers] == vsn
    # 45 nm: ANN 22·4.6 + 8·0.9 + 39·5 + 8·5; VSN 27·4.6 + 29·0.9 + 81·5 + 31·5
    assert rep.ann_pj == pytest.approx(22 * 4.6 + 8 * 0.9 + 39 * 5 + 8 * 5, rel=1e-14)
    assert rep.snn_pj == pytest.approx(27 * 4.6 + 29 * 0.9 + 81 * 5 + 31 * 5, rel=1e-14)
    assert rep.ratio == pytest.approx(rep.snn_pj / rep.ann_pj, rel=1e-15)


def test_lif_counts_binary_spikes_as_accumulates():
    # LIF, subtract reset, θ = .5: layer 0 z=1: m=1*,1.5*,2* (3), z=.3: .3,.6*,.4 (1) → E1 = 4
    # layer 1 z=2 (3), z=.4: .4,.8*,.7* (2), z=.2: .2,.4,.6* (1), z=-1 (0) → E2 = 6
    net = designed_net("lif")
    rep = energy_report(net, run_monitored(net))
    T, E1, E2 = 3, 4, 6
    assert [lay.events_out for lay in rep.layers[:2]] == [E1, E2]
    assert rep.layers[1].snn == OpCounts(0, E1 * 4 + 4 + T * 4, E1 * 4 + E1 + 4 + T * 4 + 8,
                                         T * 4 + E2)
    assert rep.layers[2].snn == OpCounts(0, E2 + 1, E2 + E2 + 1, 1)


def hand_break_even_events(H, o, T, t):
    """Events per point at which a [H, H, o] VSN (first layer W = I) costs the same as its
    ANN. From the formulas: ANN − VSN energy per point =
      MAC:    m·(H·o − E·o)          ACC:    c·(H + o − (H + T·H + o))  = −c·T·H
      reads:  r·((H·o + o + H) − (E·o + E + o + T·H + 2H))   (first layer's reads cancel)
      writes: w·((H + o) − (T·H + E + o))
    set to 0 and solved for E."""
    m, c, r, w = (Fraction(str(v)) for v in (t.mac_pj, t.acc_pj, t.read_pj, t.write_pj))
    num = m * o * H - c * T * H + r * (H * o - H - T * H) + w * (H - T * H)
    return num / (m * o + r * (o + 1) + w)


@pytest.mark.parametrize(
    "H, o, T, table",
    [(23, 3, 2, EnergyTable.compute_only()),  # a* = 1/2 − 0.9/13.8 = 10/23
     (4, 3, 1, EnergyTable()),                # E* = 179/97 events per point
     (6, 3, 2, EnergyTable()),
     (8, 1, 1, EnergyTable.compute_only())],
)
def test_ratio_is_one_at_the_break_even_activity(H, o, T, table):
    E = hand_break_even_events(H, o, T, table)
    a_star = E / (T * H)
    assert 0 < a_star < 1
    assert break_even_activity([H, H, o], steps=T, table=table) == pytest.approx(
        float(a_star), rel=1e-12)
    # Realise exactly E·P events over P points: neuron j at point p gets x = 1 (fires every
    # step: T events) or x = .3 (β = 1, θ = .5: fires once at step 2) or 0 (silent).
    P = E.denominator
    total = E.numerator
    assert total <= P * H * T
    x = torch.zeros(P, H, dtype=F64)
    per_point = [total // P + (1 if p < total % P else 0) for p in range(P)]
    for p, e in enumerate(per_point):
        full, rest = divmod(e, T)
        x[p, :full] = 1.0
        if rest:
            assert T == 2 and rest == 1
            x[p, full] = 0.3
    net = build_mlp(H, o, [H], neuron="vsn", num_steps=T, beta=1.0, threshold=0.5,
                    activation="identity", dtype=F64, seed=0)
    with torch.no_grad():
        net.linears[0].weight.copy_(torch.eye(H))
    with ActivityMonitor(net) as mon:
        net(x)
    (layer,) = mon.layers().values()
    assert layer.events == total and layer.spikes == total
    assert layer.activity == pytest.approx(float(a_star), rel=1e-14)
    rep = energy_report(net, mon, table)
    assert rep.ratio == pytest.approx(1.0, abs=1e-12)
    assert rep.snn_pj == pytest.approx(rep.ann_pj, rel=1e-12)


def test_break_even_outside_unit_interval_means_never_cheaper():
    # [4, 4, 1], T = 2 with memory costs: membrane traffic alone exceeds the ANN.
    table = EnergyTable()
    assert hand_break_even_events(4, 1, 2, table) < 0
    a = break_even_activity([4, 4, 1], steps=2, table=table)
    assert a < 0
    silent = count_energy([4, 4, 1], neuron="vsn", steps=2, events=[0.0], table=table)
    assert silent.ratio > 1


def test_report_table_and_dict():
    net = build_mlp(2, 3, [16, 16], neuron="vsn", activation="tanh", num_steps=2,
                    threshold=0.05, fourier_features=8, bounds=[[0, 0], [1, 1]], seed=0)
    with ActivityMonitor(net) as mon:
        net(torch.rand(50, 2))
    rep = energy_report(net, mon)
    md = rep.to_markdown()
    assert [row.split("|")[1].strip() for row in md.splitlines()[2:6]] == [
        "fourier", "hidden0", "hidden1", "readout"]
    assert f"**{rep.ratio:.3f}**" in md and "16→16" in md
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["ratio"] == pytest.approx(rep.ratio)
    assert sum(r["snn_pj"] for r in d["layers"]) == pytest.approx(rep.snn_pj)
    assert sum(r["ann_pj"] for r in d["layers"]) == pytest.approx(rep.ann_pj)
    assert d["layers"][1]["activity"] == pytest.approx(mon.activity()["units.0"])
    # Fourier stage: identical in both networks, d·m MACs
    assert d["layers"][0]["ann"] == d["layers"][0]["snn"] and d["layers"][0]["ann"]["mac"] == 16


def test_energy_table_config_errors():
    assert EnergyTable.from_dict({"mac_pj": 3.1}).mac_pj == 3.1
    with pytest.raises(ValueError, match=r"energy\.mac_pJ: unknown key"):
        EnergyTable.from_dict({"mac_pJ": 3.1})
    with pytest.raises(ValueError, match=r"energy\.read_pj = -1"):
        EnergyTable.from_dict({"read_pj": -1})
    with pytest.raises(ValueError, match="spiking MLP"):
        ann = build_mlp(2, 1, [4], neuron="ann")
        energy_report(ann, ActivityMonitor(ann))
