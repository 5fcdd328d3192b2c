"""What a discretised problem reports about a network: error vs FEM and spiking activity."""

from __future__ import annotations

import math

import torch

import spiking

from .parallel import allreduce_scalars


class Measured:
    """Mixin of the discretisations: the :class:`coupling.fit.Trainable` methods.

    Needs ``residual``, ``comm``, ``weights``, ``target`` (or None) and ``evaluate(net)``.
    """

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None):
        """This rank's loss and its named terms."""
        return self.residual.loss(net, batch)

    def batch_size(self) -> int:
        """Rows a mini-batch draws from on this rank (0: full batch only)."""
        return self.residual.batch_size()

    def measure(self, net: torch.nn.Module) -> dict:
        """Relative L2 error against the reference and activity per layer (collective)."""
        monitor = spiking.ActivityMonitor(net)
        with torch.no_grad(), monitor:
            u = self.evaluate(net).to(torch.float64)
        err = ref = 0.0
        if self.target is not None:
            w = self.weights.to(torch.float64)
            err = float(torch.sum(w * (u - self.target) ** 2))
            ref = float(torch.sum(w * self.target**2))
        layers = monitor.layers()
        names = list(layers)
        counts = [v for name in names for v in (layers[name].spikes, layers[name].neuron_steps)]
        sums = allreduce_scalars([err, ref, *counts], self.comm)
        out = {"rel_l2": math.sqrt(sums[0] / sums[1]) if sums[1] > 0 else None}
        if names:
            per = {name: sums[2 + 2 * i] / max(sums[3 + 2 * i], 1) for i, name in enumerate(names)}
            total = sum(sums[3::2])
            out["activity"] = {"mean": float(sum(sums[2::2]) / total) if total else 0.0,
                               "layers": per}
        return out
