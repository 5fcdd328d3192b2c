"""Energy accounting: operation counts per layer and per inference point, priced in pJ.

Counting rules (per inference point; layer l = Linear(N_in → N_out) then its unit).

ANN layer (dense input, any activation; also the ANN readout)::

    MAC    = N_in · N_out
    ACC    = N_out                               (bias)
    reads  = N_in · N_out + N_out + N_in          (weights, biases, input activations)
    writes = N_out                               (outputs)

Spiking-network layer. Synaptic part, by what arrives (E_in = nonzero incoming events
per point summed over the T_s steps, counted by :class:`~spiking.monitor.ActivityMonitor`):

* dense analog input (first layer: normalised / Fourier coordinates, applied once since
  the input current is repeated every step): MAC = N_in·N_out, reads += N_in·N_out + N_in;
* graded events (VSN upstream, Garg & Chakraborty): each nonzero event y multiplies its
  N_out fan-out weights: MAC = E_in·N_out, reads += E_in·N_out + E_in;
* binary spikes (LIF/IF upstream): each spike adds its fan-out weights:
  ACC += E_in·N_out, reads += E_in·N_out + E_in;

plus the bias: ACC += N_out, reads += N_out. Neuron part (VSN/LIF, T_s steps, p per-neuron
constants, p = 2 for β and θ, 1 for IF; E_out = nonzero output events per point)::

    ACC    += T_s · N_out                        (m ← β m + z, one accumulate per step,
                                                  the leak counted as part of it)
    reads  += T_s · N_out + p · N_out            (membrane, β/θ)
    writes += T_s · N_out + E_out                (membrane, output events)

The readout of a spiking network has no neuron part: writes += N_out. Random Fourier
features (identical in both networks) cost MAC = d·m, reads = d·m + d, writes = F (the
feature count); the sin/cos evaluations, like the activation φ in both networks, are
not priced. A population encoder (:mod:`spiking.encoders`, spiking network only) costs
:func:`encoder_ops`; the first layer then takes its E_enc events (once, the code is static)
by the graded/binary rules above, while the equal ANN takes the F dense features it codes.
Box normalisation and output scaling fold into the first and last weights (no cost).

So a VSN layer's multiplies scale with nonzero incoming events and its accumulates with
T_s·N_out (docs/algorithms.md). Energy = MAC·e_MAC + ACC·e_ACC + reads·e_read + writes·e_write.

Default prices, 45 nm CMOS, 32-bit float (M. Horowitz, "Computing's energy problem (and
what we can do about it)", ISSCC 2014): multiply 3.7 pJ + add 0.9 pJ = 4.6 pJ per MAC,
0.9 pJ per accumulate; an 8 KB SRAM costs 10 pJ per 64-bit access, i.e. 5 pJ per 32-bit
word read or written (on-chip weights; a DRAM access would be ~1.3–2.6 nJ per 64 bits).
:meth:`EnergyTable.compute_only` drops memory terms (the usual SNN-paper convention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

from torch import nn

from .monitor import ActivityMonitor


@dataclass(frozen=True)
class OpCounts:
    """Operation counts per inference point (or, as a price list, pJ per operation)."""

    mac: float = 0.0
    acc: float = 0.0
    reads: float = 0.0
    writes: float = 0.0

    def __add__(self, other: OpCounts) -> OpCounts:
        return OpCounts(*(getattr(self, f) + getattr(other, f) for f in _OPS))

    def dot(self, prices: OpCounts) -> float:
        """Σ count × price over the four operation kinds (e.g. pJ from pJ per operation)."""
        return sum(getattr(self, f) * getattr(prices, f) for f in _OPS)


_OPS = ("mac", "acc", "reads", "writes")
#: pJ per operation at 45 nm, 32-bit float, 8 KB SRAM (Horowitz 2014; module docstring).
HOROWITZ_45NM = OpCounts(mac=4.6, acc=0.9, reads=5.0, writes=5.0)


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation in picojoules (defaults: 45 nm, Horowitz ISSCC 2014)."""

    mac_pj: float = HOROWITZ_45NM.mac
    acc_pj: float = HOROWITZ_45NM.acc
    read_pj: float = HOROWITZ_45NM.reads
    write_pj: float = HOROWITZ_45NM.writes
    name: str = "45nm-fp32 (Horowitz 2014), 8KB SRAM"

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "name":
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < math.inf:
                raise ValueError(f"energy.{f.name} = {v!r}: expected a non-negative number (pJ)")

    @classmethod
    def compute_only(cls, mac_pj: float = HOROWITZ_45NM.mac,
                     acc_pj: float = HOROWITZ_45NM.acc) -> EnergyTable:
        """Table without memory-access costs (arithmetic only)."""
        return cls(mac_pj, acc_pj, 0.0, 0.0, name="45nm-fp32 compute only")

    @classmethod
    def from_dict(cls, table: Mapping, *, prefix: str = "energy") -> EnergyTable:
        """Table from a TOML table with keys mac_pj, acc_pj, read_pj, write_pj, name."""
        known = {f.name for f in fields(cls)}
        for key in (k for k in table if k not in known):
            raise ValueError(f"{prefix}.{key}: unknown key; known keys: {sorted(known)}")
        try:
            return cls(**table)
        except ValueError as err:
            raise ValueError(str(err).replace("energy.", f"{prefix}.", 1)) from None

    def price(self, ops: OpCounts) -> float:
        """Energy of ``ops`` in pJ."""
        return ops.dot(self.per_op)

    @property
    def per_op(self) -> OpCounts:
        """The prices as an :class:`OpCounts` (pJ per MAC, accumulate, read, write)."""
        return OpCounts(self.mac_pj, self.acc_pj, self.read_pj, self.write_pj)


def ann_layer_ops(n_in: int, n_out: int) -> OpCounts:
    """Dense layer: N_in·N_out MACs, N_out bias adds, weight/bias/input reads, output writes."""
    return OpCounts(mac=n_in * n_out, acc=n_out, reads=n_in * n_out + n_out + n_in,
                    writes=n_out)


def snn_layer_ops(
    n_in: int,
    n_out: int,
    *,
    events_in: float | None,
    graded_in: bool,
    steps: int | None,
    events_out: float = 0.0,
    state_params: int = 2,
) -> OpCounts:
    """Spiking-network layer (module docstring formulas); events_in None = dense input,
    steps None = readout (no neurons)."""
    if events_in is None:  # analog input, computed once
        syn = OpCounts(mac=n_in * n_out, reads=n_in * n_out + n_in)
    elif graded_in:
        syn = OpCounts(mac=events_in * n_out, reads=events_in * n_out + events_in)
    else:
        syn = OpCounts(acc=events_in * n_out, reads=events_in * n_out + events_in)
    ops = syn + OpCounts(acc=n_out, reads=n_out)
    if steps is None:
        return ops + OpCounts(writes=n_out)
    return ops + OpCounts(
        acc=steps * n_out,
        reads=steps * n_out + state_params * n_out,
        writes=steps * n_out + events_out,
    )


def fourier_ops(in_dim: int, num_features: int, out_dim: int) -> OpCounts:
    """Random Fourier features: d·m MACs for Bx, reads of B and x, writes of the features."""
    return OpCounts(mac=in_dim * num_features, reads=in_dim * num_features + in_dim,
                    writes=out_dim)


@dataclass(frozen=True)
class LayerEnergy:
    """One layer's counts for the ANN and the spiking network, per inference point."""

    name: str
    n_in: int
    n_out: int
    ann: OpCounts
    snn: OpCounts
    events_in: float | None = None
    events_out: float | None = None
    activity: float | None = None


@dataclass
class EnergyReport:
    """Per-layer and total energy of a spiking network and its equal-shape ANN.

    ``floor`` = (full, compute-only) ratio of the same shape at zero activity."""

    layers: list[LayerEnergy]
    table: EnergyTable
    neuron: str
    steps: int
    floor: tuple[float, float] | None = None

    @property
    def ann_pj(self) -> float:
        """ANN energy per inference point (pJ)."""
        return sum(self.table.price(la.ann) for la in self.layers)

    @property
    def snn_pj(self) -> float:
        """Spiking-network energy per inference point (pJ)."""
        return sum(self.table.price(la.snn) for la in self.layers)

    @property
    def ratio(self) -> float:
        """Spiking / ANN energy (< 1: the spiking network is cheaper)."""
        return self.snn_pj / self.ann_pj

    def compute_only(self) -> EnergyReport:
        """The same counts priced without memory accesses (the SNN papers' convention)."""
        table = EnergyTable.compute_only(self.table.mac_pj, self.table.acc_pj)
        return EnergyReport(self.layers, table, self.neuron, self.steps, self.floor)

    def to_dict(self) -> dict:
        """JSON-ready dict: table, totals and ratio in both conventions (full = compute +
        memory, compute-only), the zero-activity floor, per-layer counts and energies."""
        co = self.compute_only()
        rows = []
        for la in self.layers:
            a, s = self.table.price(la.ann), self.table.price(la.snn)
            ac, sc = co.table.price(la.ann), co.table.price(la.snn)
            rows.append({**asdict(la), "ann_pj": a, "snn_pj": s, "ratio": _div(s, a),
                         "ann_compute_pj": ac, "snn_compute_pj": sc,
                         "ratio_compute": _div(sc, ac)})
        floor = self.floor or (None, None)
        return {"table": asdict(self.table), "neuron": self.neuron, "steps": self.steps,
                "ann_pj": self.ann_pj, "snn_pj": self.snn_pj, "ratio": self.ratio,
                "compute_only": {"ann_pj": co.ann_pj, "snn_pj": co.snn_pj, "ratio": co.ratio},
                "floor": {"ratio": floor[0], "ratio_compute": floor[1]}, "layers": rows}

    def to_markdown(self) -> str:
        """Per-layer breakdown as a Markdown table (energies in pJ per point), with the
        ratio in both conventions (full, compute-only)."""
        tag, d = self.neuron.upper(), self.to_dict()
        head = (f"| layer | shape | activity | events in/pt | ANN MAC | ANN ACC | ANN mem | "
                f"ANN pJ | {tag} MAC | {tag} ACC | {tag} mem | {tag} pJ | {tag}/ANN | "
                f"{tag}/ANN compute-only |")
        lines = [head, "|" + "---|" * 14]
        for la, r in zip(self.layers, d["layers"], strict=True):
            lines.append(
                f"| {la.name} | {la.n_in}→{la.n_out} | {_fmt(la.activity, '.3f')} | "
                f"{_fmt(la.events_in)} | {la.ann.mac:.4g} | {la.ann.acc:.4g} | "
                f"{la.ann.reads + la.ann.writes:.4g} | {r['ann_pj']:.4g} | {la.snn.mac:.4g} | "
                f"{la.snn.acc:.4g} | {la.snn.reads + la.snn.writes:.4g} | {r['snn_pj']:.4g} | "
                f"{_fmt(r['ratio'], '.3f')} | {_fmt(r['ratio_compute'], '.3f')} |")
        lines.append(
            f"| **total** | | | | | | | {self.ann_pj:.4g} | | | | {self.snn_pj:.4g} | "
            f"**{self.ratio:.3f}** | **{d['compute_only']['ratio']:.3f}** |")
        fl = d["floor"]
        lines.append(
            f"\nT_s = {self.steps}; floor at zero activity {_fmt(fl['ratio'], '.3f')} (full), "
            f"{_fmt(fl['ratio_compute'], '.3f')} (compute-only); prices ({self.table.name}): "
            f"MAC {self.table.mac_pj} pJ, ACC {self.table.acc_pj} pJ, read "
            f"{self.table.read_pj} pJ, write {self.table.write_pj} pJ per 32-bit word.")
        return "\n".join(lines)


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _fmt(v: float | None, spec: str = ".4g") -> str:
    return "–" if v is None else format(v, spec)


def encoder_ops(in_dim: int, mode: str) -> OpCounts:
    """Population encoder (spiking.encoders) per point: per feature u = a·x + b (1 MAC),
    round (onehot: 1 ACC) or floor, t, 1 − t (hat: 3 ACC); reads x, a, b; writes each
    event word (hat: 2 values and the cell index per feature; onehot: the index)."""
    hat = mode == "hat"
    return OpCounts(mac=in_dim, acc=(3 if hat else 1) * in_dim, reads=in_dim + 2,
                    writes=(3 if hat else 1) * in_dim)


def _input_layers(widths: Sequence[int], fourier: tuple[int, int] | None,
                  encoder: tuple[str, int, int] | None) -> tuple[list[LayerEnergy], int]:
    """The Fourier-feature and encoder stages in front of the first layer, and the width
    the equal ANN's first layer takes (the encoder's dense features, else widths[0])."""
    layers: list[LayerEnergy] = []
    ann_in = widths[0]
    if fourier is not None:
        d, m = fourier
        ops = fourier_ops(d, m, encoder[1] if encoder else widths[0])
        layers.append(LayerEnergy("fourier", d, ops.writes, ops, ops))
    if encoder is not None:
        mode, ann_in, levels = encoder
        if ann_in * levels != widths[0]:
            raise ValueError(f"encoder {encoder}: {ann_in}·{levels} cells != width {widths[0]}")
        layers.append(LayerEnergy("encoder", ann_in, widths[0], OpCounts(),
                                  encoder_ops(ann_in, mode)))
    return layers, ann_in


def count_energy(
    widths: Sequence[int],
    *,
    neuron: str,
    steps: int,
    events: Sequence[float],
    activity: Sequence[float] | None = None,
    fourier: tuple[int, int] | None = None,
    table: EnergyTable | None = None,
    graded: bool | None = None,
    state_params: int | None = None,
    encoder: tuple[str, int, int] | None = None,
    _floor: bool = True,
) -> EnergyReport:
    """Energy report for an MLP of ``widths`` [F, h_1, …, h_L, out] with hidden units
    ``neuron`` ('vsn' | 'lif' | 'if'); ``events[l]`` = nonzero output events per point of
    hidden layer l (over all steps); ``fourier`` = (in_dim, num_features) if used.
    ``graded`` (events carry values) and ``state_params`` (per-neuron state words) are the
    neuron's own attributes; by default those of the named kind. ``encoder`` = (mode,
    features, levels) of a population encoder: the first layer then takes its events
    (F = features·levels) while the equal ANN takes the ``features`` dense values."""
    if neuron not in ("vsn", "lif", "if") and (graded is None or state_params is None):
        raise ValueError(f"neuron = {neuron!r}: expected 'vsn', 'lif' or 'if'")
    n_hidden = len(widths) - 2
    if n_hidden < 1 or len(events) != n_hidden:
        raise ValueError(f"need widths [F, h_1..h_L, out] and {max(n_hidden, 0)} event counts, "
                         f"got widths {list(widths)} and {len(events)} counts")
    table = table or EnergyTable()
    graded = neuron == "vsn" if graded is None else graded
    state_params = (1 if neuron == "if" else 2) if state_params is None else state_params
    layers, ann_in = _input_layers(widths, fourier, encoder)
    for l in range(n_hidden + 1):
        n_in, n_out = widths[l], widths[l + 1]
        readout = l == n_hidden
        ev_in, g_in = (None if l == 0 else float(events[l - 1])), graded
        if l == 0 and encoder is not None:
            ev_in, g_in = float(ann_in * (2 if encoder[0] == "hat" else 1)), encoder[0] == "hat"
        ev_out = None if readout else float(events[l])
        snn = snn_layer_ops(
            n_in, n_out, events_in=ev_in, graded_in=g_in,
            steps=None if readout else steps, events_out=ev_out or 0.0,
            state_params=state_params,
        )
        act = None if readout or activity is None else activity[l]
        name = "readout" if readout else f"hidden{l}"
        ann = ann_layer_ops(ann_in if l == 0 else n_in, n_out)
        layers.append(LayerEnergy(name, n_in, n_out, ann, snn, ev_in, ev_out, act))
    rep = EnergyReport(layers, table, neuron, steps)
    if _floor:
        zero = count_energy(widths, neuron=neuron, steps=steps, events=[0.0] * n_hidden,
                            fourier=fourier, table=table, graded=graded,
                            state_params=state_params, encoder=encoder, _floor=False)
        rep.floor = (zero.ratio, zero.compute_only().ratio)
    return rep


def network_spec(net: nn.Module) -> dict:
    """The keywords of :func:`count_energy` that describe a spiking MLP's shape."""
    unit = net.units[0] if len(getattr(net, "units", ())) else None
    if not hasattr(unit, "graded"):
        raise ValueError("energy accounting needs a spiking MLP (hidden units are spiking "
                         "neurons)")
    fourier = None
    if net.fourier is not None:
        fourier = (net.fourier.in_dim, net.fourier.B.shape[0])
    enc = getattr(net, "encoder", None)
    encoder = None if enc is None else (enc.mode, enc.in_dim, enc.levels)
    return dict(widths=net.widths, neuron=net.neuron, steps=unit.num_steps, fourier=fourier,
                graded=unit.graded, state_params=unit.state_params, encoder=encoder)


def energy_report(
    net: nn.Module, monitor: ActivityMonitor, table: EnergyTable | None = None
) -> EnergyReport:
    """Energy of ``net`` (a spiking :class:`~spiking.networks.MLP`) from the events its
    monitor recorded, against the ANN of identical shape."""
    spec = network_spec(net)
    if monitor.net is not net:
        raise ValueError("the monitor watches a different network")
    stats = monitor.layers()
    units = set(net.units)
    per_layer = [stats[n] for n, m in net.named_modules() if m in units]
    if any(la.points == 0 for la in per_layer):
        raise ValueError("the monitor recorded nothing; run the network inside the monitor")
    return count_energy(events=[la.events_per_point for la in per_layer],
                        activity=[la.activity for la in per_layer], table=table, **spec)
