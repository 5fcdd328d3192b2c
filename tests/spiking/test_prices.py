"""Prices per answer (spiking.prices): a tiny network and a tiny reduced model by hand."""

from __future__ import annotations

import pytest

from spiking.energy import OpCounts, count_energy
from spiking.prices import LOIHI_2018, flop_ops, network_prices, neuromorphic_counts, price


def test_tiny_network_by_hand():
    # widths [2, 3, 1], VSN, T_s = 2, 2 events out of the hidden layer per point, 10 points
    rep = count_energy([2, 3, 1], neuron="vsn", steps=2, events=[2.0])
    p = network_prices(rep, 10)
    # spiking: MAC 6 + 2, ACC 3 + 6 + 1, reads 8 + 3 + 12 + 5, writes 8 + 1
    assert p["spiking"]["full_pj"] == pytest.approx(10 * (8 * 4.6 + 10 * 0.9 + 37 * 5.0))
    assert p["spiking"]["compute_pj"] == pytest.approx(10 * (8 * 4.6 + 10 * 0.9))
    # equal ANN: MAC 6 + 3, ACC 3 + 1, reads 11 + 7, writes 3 + 1
    assert p["ann"]["full_pj"] == pytest.approx(10 * (9 * 4.6 + 4 * 0.9 + 22 * 5.0))
    assert p["ann"]["neuromorphic_pj"] is None
    # neuromorphic: 2·3 + 2·1 synaptic ops, 2·3 + 1 neuron updates, 2 spikes
    ev = neuromorphic_counts(rep)
    assert (ev.syn_ops, ev.neuron_updates, ev.spikes) == (8, 7, 2)
    assert p["spiking"]["neuromorphic_pj"] == pytest.approx(10 * (8 * 23.6 + 7 * 81 + 2 * 1.7))
    assert LOIHI_2018.pre_silicon


def test_tiny_reduced_model_and_fem_by_hand():
    from fem.reduced import query_ops

    # r = 2, Q = 2, P = 3 load terms, 10 free + 4 Dirichlet dofs, 1 channel
    ops = OpCounts(**query_ops([2], 2, [3], 10, 4, 1))
    mac, reads, writes = 8 + 6 + 8 / 3 + 4 + 20 + 4, 8 + 6 + 2 + 3 + 4 + 20 + 4 + 2 + 1, 22
    assert price(ops)["full_pj"] == pytest.approx(mac * 4.6 + (reads + writes) * 5.0)
    assert price(ops)["compute_pj"] == pytest.approx(mac * 4.6)
    assert price(flop_ops(1000.0, 10, 20))["full_pj"] == pytest.approx(500 * 4.6 + 30 * 5.0)
