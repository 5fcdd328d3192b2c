"""What a discretised problem reports about a network: error vs FEM and spiking activity."""

from __future__ import annotations

import math

import torch

import spiking

from .parallel import allreduce_scalars


class Measured:
    """Mixin of the discretisations: the :class:`coupling.loop.Trainable` methods.

    Needs ``residual``, ``comm``, ``weights``, ``target`` (or None) and ``evaluate(net)``.
    """

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None):
        """This rank's loss and its named terms."""
        return self.residual.loss(net, batch)

    def batch_size(self) -> int:
        """Rows a mini-batch draws from on this rank (0: full batch only)."""
        return self.residual.batch_size()

    def draw(self, step: int) -> torch.Tensor | None:
        """The residual's own sample for `step` (element sampling), or None."""
        draw = getattr(self.residual, "draw", None)
        return draw(step) if draw is not None else None

    def measure(self, net: torch.nn.Module) -> dict:
        """Relative L2 error against the reference and activity per layer (collective)."""
        monitor = spiking.ActivityMonitor(net)
        with torch.no_grad(), monitor:
            u = self.evaluate(net)
        out = {"rel_l2": relative_l2(u, self.target, self.weights, self.comm)}
        activity = global_activity(monitor, self.comm)
        if activity["layers"]:
            out["activity"] = {k: activity[k] for k in ("mean", "layers")}
        return out


def relative_l2(u: torch.Tensor, target: torch.Tensor | None, weights: torch.Tensor,
                comm) -> float | None:
    """√(Σ w (u − u_ref)² / Σ w u_ref²) over all ranks (None without a reference)."""
    err = ref = 0.0
    if target is not None:
        u = u.detach().cpu().to(torch.float64).reshape(-1)
        w = weights.detach().cpu().to(torch.float64)
        err = float(torch.sum(w * (u - target) ** 2))
        ref = float(torch.sum(w * target**2))
    err, ref = allreduce_scalars([err, ref], comm)
    return math.sqrt(err / ref) if ref > 0 else None


def global_activity(monitor: spiking.ActivityMonitor, comm) -> dict:
    """Activity over all ranks: mean, per layer, and nonzero events per point per layer."""
    layers = monitor.layers()
    names = list(layers)
    counts = [v for n in names for v in (layers[n].spikes, layers[n].neuron_steps,
                                          layers[n].events, layers[n].points)]
    sums = list(allreduce_scalars(counts, comm)) if counts else []
    per = {n: sums[4 * i] / max(sums[4 * i + 1], 1) for i, n in enumerate(names)}
    events = {n: sums[4 * i + 2] / max(sums[4 * i + 3], 1) for i, n in enumerate(names)}
    total = sum(sums[1::4]) if sums else 0
    return {"mean": float(sum(sums[0::4]) / total) if total else 0.0, "layers": per,
            "events_per_point": events}
