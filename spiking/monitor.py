"""Spiking-activity monitors: per-layer and per-point spike and event counts.

Off by default: a neuron keeps ``record = None`` and its step pays one ``is None`` test.
While an :class:`ActivityMonitor` is active, every step adds, per input point, the
number of spikes (s = 1) and of nonzero outputs ("events", the values a downstream
synapse must process) to a detached running sum; nothing is synchronised to the host
until a statistic is asked for.

Definitions (layer with n neurons, T steps, P points):
activity = (Σ spikes) / (n · T · P), the fraction of neuron-step-sample triples that fire;
per-point activity = (spikes at that point) / (n · T).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .neurons import SpikingNeuron


class LayerRecord:
    """Running per-point spike/event sums of one neuron layer over monitored passes."""

    def __init__(self, num_neurons: int) -> None:
        self.num_neurons = num_neurons
        self.passes: list[list] = []  # [spikes per point, events per point, steps]
        self._current: list | None = None

    def begin(self) -> None:
        """Start a new pass (a forward or run call)."""
        self._current = None

    def add_step(self, spikes: torch.Tensor, outputs: torch.Tensor) -> None:
        """Add one step's spikes and outputs, both (…, n)."""
        n = self.num_neurons
        sp = spikes.detach().reshape(-1, n).sum(dim=1)
        ev = (outputs.detach() != 0).reshape(-1, n).sum(dim=1)
        cur = self._current
        if cur is None or cur[0].shape != sp.shape:
            self._current = [sp, ev, 1]
            self.passes.append(self._current)
        else:
            cur[0] = cur[0] + sp
            cur[1] = cur[1] + ev
            cur[2] += 1


@dataclass(frozen=True)
class LayerActivity:
    """Totals of one layer over everything recorded."""

    name: str
    num_neurons: int
    spikes: int          # Σ s over neurons, steps, points
    events: int          # Σ [y ≠ 0] over neurons, steps, points
    neuron_steps: int    # Σ n · T over points (the denominator of activity)
    points: int          # number of points seen
    steps: float         # mean T per point

    @property
    def activity(self) -> float:
        """Fraction of (neuron, step, point) triples that fired."""
        return self.spikes / self.neuron_steps if self.neuron_steps else 0.0

    @property
    def events_per_point(self) -> float:
        """Mean number of nonzero output events per input point (over all steps)."""
        return self.events / self.points if self.points else 0.0


def spiking_layers(net: nn.Module) -> dict[str, SpikingNeuron]:
    """Named spiking-neuron submodules of ``net`` (``net`` itself if it is one)."""
    if isinstance(net, SpikingNeuron):
        return {"": net}
    return {name: m for name, m in net.named_modules() if isinstance(m, SpikingNeuron)}


class ActivityMonitor:
    """Records spiking activity of all neuron layers of ``net`` while active.

    Use ``with ActivityMonitor(net) as mon: net(x)``; then ``mon.activity()``,
    ``mon.layers()`` or ``mon.per_point()``. ``start``/``stop`` do the same without
    ``with``; ``clear`` drops what was recorded. Several passes accumulate.
    """

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.neurons = spiking_layers(net)
        self.records = {name: LayerRecord(m.num_neurons) for name, m in self.neurons.items()}
        self.active = False

    def start(self) -> ActivityMonitor:
        """Attach the records so neurons start counting."""
        for name, m in self.neurons.items():
            if m.record is not None and m.record is not self.records[name]:
                raise RuntimeError(f"layer {name!r} is already monitored by another monitor")
            m.record = self.records[name]
        self.active = True
        return self

    def stop(self) -> None:
        """Detach the records; the neurons go back to the zero-overhead path."""
        for name, m in self.neurons.items():
            if m.record is self.records[name]:
                m.record = None
        self.active = False

    def clear(self) -> None:
        """Forget everything recorded so far."""
        for rec in self.records.values():
            rec.passes.clear()
            rec.begin()

    def __enter__(self) -> ActivityMonitor:
        self.clear()
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def layers(self) -> dict[str, LayerActivity]:
        """Per-layer totals (spikes, events, activity) over all recorded passes."""
        out = {}
        for name, rec in self.records.items():
            spikes = events = neuron_steps = points = 0
            step_points = 0
            for sp, ev, steps in rec.passes:
                spikes += int(sp.sum())
                events += int(ev.sum())
                points += sp.numel()
                neuron_steps += sp.numel() * steps * rec.num_neurons
                step_points += sp.numel() * steps
            out[name] = LayerActivity(
                name=name,
                num_neurons=rec.num_neurons,
                spikes=spikes,
                events=events,
                neuron_steps=neuron_steps,
                points=points,
                steps=step_points / points if points else 0.0,
            )
        return out

    def activity(self) -> dict[str, float]:
        """Per-layer activity: fraction of (neuron, step, point) triples that fired."""
        return {name: la.activity for name, la in self.layers().items()}

    def mean_activity(self) -> float:
        """Activity pooled over all layers (total spikes / total neuron-steps-points)."""
        layers = self.layers().values()
        total = sum(la.neuron_steps for la in layers)
        return sum(la.spikes for la in layers) / total if total else 0.0

    def per_point(self, layer: str | None = None) -> torch.Tensor:
        """Per-point activity (mean over neurons and steps), concatenated over passes.

        ``layer=None`` pools all layers (spikes / neuron-steps summed over layers);
        all layers must then have seen the same points.
        """
        names = list(self.records) if layer is None else [layer]
        if layer is not None and layer not in self.records:
            raise KeyError(f"no spiking layer {layer!r}; layers: {list(self.records)}")
        spikes = denom = None
        for name in names:
            rec = self.records[name]
            if not rec.passes:
                continue
            sp = torch.cat([p[0].to(torch.float64) for p in rec.passes])
            dn = torch.cat(
                [torch.full_like(p[0], p[2] * rec.num_neurons, dtype=torch.float64)
                 for p in rec.passes]
            )
            if spikes is not None and sp.shape != spikes.shape:
                raise ValueError("layers saw different numbers of points; ask per layer")
            spikes = sp if spikes is None else spikes + sp
            denom = dn if denom is None else denom + dn
        if spikes is None:
            return torch.zeros(0, dtype=torch.float64)
        return spikes / denom


class EventCount:
    """A neuron record that keeps Σ s (the surrogate spike tensor, with its gradient) and
    the points seen; it passes every step on to a monitor's record already attached."""

    def __init__(self, num_neurons: int, inner: LayerRecord | None = None) -> None:
        self.num_neurons, self.inner = num_neurons, inner
        self.total: torch.Tensor | float = 0.0
        self.points, self._new = 0, True

    def begin(self) -> None:
        """Start a new pass."""
        self._new = True
        if self.inner is not None:
            self.inner.begin()

    def add_step(self, spikes: torch.Tensor, outputs: torch.Tensor) -> None:
        """Add one step's spikes (…, n), keeping the graph."""
        if self._new:
            self.points += spikes.numel() // self.num_neurons
            self._new = False
        self.total = self.total + spikes.sum()
        if self.inner is not None:
            self.inner.add_step(spikes, outputs)

    def per_point(self) -> torch.Tensor | float:
        """Differentiable events (spikes over neurons and steps) per point."""
        return self.total / self.points if self.points else 0.0


class ActivityPenalty:
    """The activity regulariser λ·Σ_l w_l·events_l (events of hidden layer l per point,
    differentiable through the surrogate spike), optionally only above a target rate:
    events_l → max(0, events_l − target·T_s·n_l). ``costs`` are the w_l (for an energy
    share: :func:`spiking.event_costs.event_weights`). Use ``with pen.counting(): loss = …``,
    then ``pen.terms()``."""

    def __init__(self, net: nn.Module, weight: float, costs: list[float],
                 target: float | None = None) -> None:
        self.neurons = spiking_layers(net)
        if not self.neurons or len(costs) != len(self.neurons):
            raise ValueError(f"activity regulariser: {len(self.neurons)} spiking layers, "
                             f"{len(costs)} costs (needs a spiking network)")
        self.weight, self.costs, self.target = float(weight), list(costs), target
        self.counts: dict[str, EventCount] = {}

    def counting(self) -> ActivityPenalty:
        """Attach fresh counters (a context manager: ``with pen.counting(): …``)."""
        self.counts = {name: EventCount(m.num_neurons, m.record)
                       for name, m in self.neurons.items()}
        return self

    def __enter__(self) -> ActivityPenalty:
        for name, m in self.neurons.items():
            m.record = self.counts[name]
        return self

    def __exit__(self, *exc) -> None:
        for name, m in self.neurons.items():
            m.record = self.counts[name].inner

    def terms(self, scale: float = 1.0) -> tuple[torch.Tensor | float, dict]:
        """(λ·Σ w_l·excess_l, {"activity": …, "events/<layer>": events_l}), all × scale."""
        penalty, logged = 0.0, {}
        for (name, m), w in zip(self.neurons.items(), self.costs, strict=True):
            ev = self.counts[name].per_point()
            excess = ev
            if self.target is not None:
                excess = torch.relu(torch.as_tensor(ev) - self.target * m.num_steps
                                    * m.num_neurons)
            penalty = penalty + w * excess
            logged[f"events/{name}"] = torch.as_tensor(ev).detach() * scale
        penalty = self.weight * scale * penalty
        logged["activity"] = torch.as_tensor(penalty).detach()
        return penalty, logged
