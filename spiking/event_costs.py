"""What one more spike event costs: the activity regulariser's per-layer weights and the
activity at which a spiking network's energy equals its equal ANN's (:mod:`spiking.energy`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .energy import EnergyTable, count_energy, network_spec


def event_weights(net: nn.Module, table: EnergyTable | None = None) -> list[float]:
    """Per hidden layer l, the priced cost of one more output event of layer l (its write
    and what it costs downstream) divided by the equal ANN's energy per point: the
    weights w_l of the activity regulariser λ·Σ_l w_l·events_l (an energy-ratio share)."""
    spec = network_spec(net)
    n = len(spec["widths"]) - 2
    base = count_energy(events=[0.0] * n, table=table, _floor=False, **spec)
    return [(count_energy(events=[float(k == l) for k in range(n)], table=table,
                          _floor=False, **spec).snn_pj - base.snn_pj) / base.ann_pj
            for l in range(n)]


def break_even_activity(
    widths: Sequence[int],
    *,
    neuron: str = "vsn",
    steps: int,
    fourier: tuple[int, int] | None = None,
    table: EnergyTable | None = None,
) -> float:
    """Uniform activity a at which spiking and ANN energies are equal (every spike one
    nonzero event, events_l = a·T_s·h_l); below it the spiking network is cheaper.
    May fall outside [0, 1] (never / always cheaper)."""
    hidden = widths[1:-1]

    e0, e1 = (count_energy(widths, neuron=neuron, steps=steps, fourier=fourier, table=table,
                           events=[a * steps * h for h in hidden], _floor=False)
              for a in (0.0, 1.0))  # the spiking energy is affine in a
    return (e0.ann_pj - e0.snn_pj) / (e1.snn_pj - e0.snn_pj)
