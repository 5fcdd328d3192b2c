"""Prices per answer in one set of units, for every method that answers the same question.

Three conventions side by side (pJ per answer):

- **45 nm full** and **45 nm compute-only**: :class:`spiking.energy.EnergyTable` (Horowitz,
  ISSCC 2014) applied to operation counts — a network's per point × points, a reduced
  model's online query (:func:`fem.reduced.query_ops`), a FEM solve's PETSc flop count
  (:func:`flop_ops`: one MAC per two flops; its memory words from nnz, :mod:`fem.flops`).
  Every method is priced at fp32 arithmetic prices, although FEM and the reduced model run
  in float64 (their memory words do count float64 as two words): this favours them.
- **neuromorphic**: a spiking network as it would run on a Loihi-class chip, from its event
  counts — synaptic operations (every incoming event, or dense input value, times its
  fan-out), neuron updates (every hidden neuron every time step; the readout once) and
  spikes (nonzero output events) — at :data:`LOIHI_2018`. What such a chip cannot do
  natively (random Fourier features, the population encoder) is priced on the host at the
  45 nm full table and added. ANNs, FEM and reduced models have no neuromorphic price.

Sources of the neuromorphic prices: M. Davies et al., "Loihi: a neuromorphic manycore
processor with on-chip learning", IEEE Micro 38(1):82–99, 2018, the core-parameters table:
energy per synaptic spike operation 23.6 pJ (a minimum), per neuron update 81 pJ active
(52 pJ inactive), per spike within a tile 1.7 pJ (plus 3.0 / 4.0 pJ per east–west /
north–south tile hop, not charged: placement decides the hops), all at 0.75 V. These are
**pre-silicon** figures (the table is from pre-silicon simulation), and the synaptic figure
is a minimum: read the neuromorphic column as a lower bound of a real chip's energy. Intel
has not published per-operation energies for Loihi 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from .energy import EnergyReport, EnergyTable, OpCounts


@dataclass(frozen=True)
class NeuromorphicTable:
    """pJ per synaptic operation, per neuron update and per spike."""

    syn_op_pj: float = 23.6
    neuron_update_pj: float = 81.0
    spike_pj: float = 1.7
    name: str = "Loihi 14 nm (Davies et al., IEEE Micro 2018), pre-silicon lower bound"
    pre_silicon: bool = True


#: Davies et al. 2018 (module docstring): pre-silicon, synaptic op a minimum, hops not charged.
LOIHI_2018 = NeuromorphicTable()


@dataclass(frozen=True)
class EventCounts:
    """What a spiking network does per inference point on a neuromorphic chip."""

    syn_ops: float
    neuron_updates: float
    spikes: float
    host: OpCounts  # work the chip cannot do natively (Fourier features, encoder)

    def price(self, table: NeuromorphicTable = LOIHI_2018,
              host: EnergyTable | None = None) -> float:
        """pJ per point: events at `table`, host work at `host` (45 nm full by default)."""
        host = host or EnergyTable()
        return (self.syn_ops * table.syn_op_pj + self.neuron_updates * table.neuron_update_pj
                + self.spikes * table.spike_pj + host.price(self.host))


def neuromorphic_counts(report: EnergyReport | dict) -> EventCounts:
    """Event counts per point from a spiking network's energy report (or its ``to_dict``)."""
    rep = report.to_dict() if isinstance(report, EnergyReport) else report
    syn = upd = spikes = 0.0
    host = OpCounts()
    for la in rep["layers"]:
        if la["name"] in ("fourier", "encoder"):
            host = host + OpCounts(**la["snn"])
            continue
        fan_in = la["n_in"] if la["events_in"] is None else la["events_in"]  # dense: graded
        syn += fan_in * la["n_out"]
        if la["name"] == "readout":
            upd += la["n_out"]
        else:
            upd += rep["steps"] * la["n_out"]
            spikes += la["events_out"] or 0.0
    return EventCounts(syn, upd, spikes, host)


def flop_ops(flops: float, reads: float = 0.0, writes: float = 0.0) -> OpCounts:
    """Operation counts of a flop count (one multiply–add = one MAC = two flops)."""
    return OpCounts(mac=flops / 2.0, reads=reads, writes=writes)


def price(ops: OpCounts, table: EnergyTable | None = None) -> dict:
    """pJ of `ops` in both 45 nm conventions: {'full_pj', 'compute_pj'}."""
    table = table or EnergyTable()
    compute = EnergyTable.compute_only(table.mac_pj, table.acc_pj)
    return {"full_pj": table.price(ops), "compute_pj": compute.price(ops)}


def network_prices(report: EnergyReport | dict, points: int,
                   table: NeuromorphicTable = LOIHI_2018) -> dict:
    """pJ per answer (`points` evaluations) of a spiking network and its equal ANN, from
    its energy report or the report's ``to_dict`` (as a run's summary.json holds it)."""
    rep = report.to_dict() if isinstance(report, EnergyReport) else report
    host = EnergyTable(**rep["table"])
    co = rep["compute_only"]
    events = neuromorphic_counts(rep).price(table, host)
    snn = {"full_pj": rep["snn_pj"] * points, "compute_pj": co["snn_pj"] * points,
           "neuromorphic_pj": events * points}
    ann = {"full_pj": rep["ann_pj"] * points, "compute_pj": co["ann_pj"] * points,
           "neuromorphic_pj": None}
    return {"spiking": snn, "ann": ann}
