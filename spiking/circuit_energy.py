"""Operation counts of a spiking circuit run, priced with a :class:`~spiking.energy.EnergyTable`.

Counting rules (``n`` dofs, ``N`` neurons per dof, ``T`` steps, ``S`` spikes, ``E`` synaptic
events: a spike of dof j reaches the N neurons of every dof i with K_ij ≠ 0 (slow) and
the N neurons of its own population (fast), so E = Σ_spikes N·(nnz_j + 1)):

* synapses, as binary spikes in :mod:`spiking.energy`: ACC = E, reads = E + S (weights and
  the event), writes = S (the event);
* neurons, per neuron and step: one MAC per product with a nonzero gain — h·e into z,
  ρ·z (leak > 0), k_p·e (k_p > 0), k_i·z (k_i > 0), λ_v·V (λ_v > 0), h·drive into V,
  and the λ_d decays of the slow and fast currents (λ_d > 0) — plus ACCs for e = s_slow
  + bias, + s_fast (λ_d > 0) and the threshold test; reads: V, z, s_slow, bias, θ
  (+ s_fast when λ_d > 0); writes: V, z, s_slow (+ s_fast);
* readout x̂ = γR, per dof and step: 1 ACC (add the count) + 1 MAC when λ_d > 0 (its
  decay), 1 read, 1 write; the averaged readout x̄ (average > 0) one more MAC, read and
  write.

Fixed-point multiplies are priced as MACs too (a shift-and-add on a chip is cheaper; the
table decides the price). On a neuromorphic table (:data:`spiking.prices.LOIHI_2018`) the
same run is E synaptic operations, n·N·T neuron updates and S spikes, with the readout
decoder priced on the host at 45 nm (:func:`neuromorphic_pj`).
"""

from __future__ import annotations

from dataclasses import asdict

from .circuit import CircuitParams
from .energy import EnergyTable, OpCounts
from .prices import LOIHI_2018, EventCounts, NeuromorphicTable


def neuron_ops(p: CircuitParams) -> OpCounts:
    """Operations of one neuron in one step."""
    decays = p.lambda_d > 0
    mac = 2 + sum(g > 0 for g in (p.leak, p.k_p, p.k_i, p.lambda_v)) + 2 * decays
    acc = 2 + decays
    return OpCounts(mac=mac, acc=acc, reads=5 + decays, writes=3 + decays)


def readout_ops(p: CircuitParams) -> OpCounts:
    """Operations of one dof's readout in one step."""
    avg = p.average > 0
    return OpCounts(mac=float(p.lambda_d > 0) + avg, acc=1, reads=1 + avg, writes=1 + avg)


def circuit_ops(p: CircuitParams, *, dofs: int, steps: int, spikes: int, synaptic: int
                ) -> dict[str, OpCounts]:
    """Counts of a run: synapses, neurons, readout and their total."""
    syn = OpCounts(acc=synaptic, reads=synaptic + spikes, writes=spikes)
    ns = neuron_ops(p)
    k = dofs * p.neurons * steps
    neurons = OpCounts(ns.mac * k, ns.acc * k, ns.reads * k, ns.writes * k)
    ro = readout_ops(p)
    m = dofs * steps
    readout = OpCounts(ro.mac * m, ro.acc * m, ro.reads * m, ro.writes * m)
    return {"synapses": syn, "neurons": neurons, "readout": readout,
            "total": syn + neurons + readout}


def price(ops: dict[str, OpCounts], table: EnergyTable | None = None) -> dict:
    """pJ of each part under `table` (default: 45 nm, Horowitz 2014), with the counts."""
    table = table or EnergyTable()
    compute = EnergyTable.compute_only(table.mac_pj, table.acc_pj)
    return {"table": table.name,
            **{k: {"pj": table.price(v), "compute_pj": compute.price(v), **asdict(v)}
               for k, v in ops.items()}}


def neuromorphic_pj(p: CircuitParams, *, dofs: int, steps: int, spikes: int, synaptic: int,
                    table: NeuromorphicTable = LOIHI_2018) -> float:
    """pJ of a run on a neuromorphic chip: events at `table`, the readout on the host."""
    ro = readout_ops(p)
    m = dofs * steps
    host = OpCounts(ro.mac * m, ro.acc * m, ro.reads * m, ro.writes * m)
    return EventCounts(synaptic, dofs * p.neurons * steps, spikes, host).price(table)
