"""What a discretised problem reports about a network: error vs FEM and spiking activity.

Besides the nodal relative L2 error (``rel_l2``), discretisations with an FE reference
report the error *between* the nodes (``offnode``: vs FEM at quadrature points inside every
cell, split into cells touching the boundary and interior cells, worst deviation, and the
same for the P1 interpolant of the nodal values; :mod:`coupling.pointwise`) and, when the
boundary map lifts the data, the error of the lift alone with N = 0 (``lift_rel_l2``).
"""

from __future__ import annotations

import math

import torch

import spiking
from coupling.training.parallel import allreduce_scalars


class Measured:
    """Mixin of the discretisations: the :class:`coupling.training.loop.Trainable` methods.

    Needs ``residual``, ``comm``, ``weights``, ``target`` (or None) and ``evaluate(net)``.
    """

    def sample(self, step: int, batch: int | float = 0) -> torch.Tensor | None:
        """The residual's mini-batch for `step` (None: the whole loss); the consistency
        term's points of the step are drawn from `step` too (a resumed run redraws them)."""
        term = getattr(self, "consistency", None)
        if term is not None:
            term.step = step
        return self.residual.sample(step, batch)

    #: off-node errors at every so many logging measures (they cost a pass at many points;
    #: 0: only in the final measure; ``training.offnode_every``)
    offnode_every = 10
    #: the most points the off-node probe evaluates, over all ranks (None: every cell's
    #: quadrature points; ``training.offnode_points``: a geometric sample of the cells)
    offnode_points: int | None = None
    #: False: no off-node measures at all (timing benchmarks that score the nodes only)
    offnode = True

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """Relative L2 error against the reference (at the nodes, off the nodes, of the lift
        alone) and activity per layer (collective). Logging calls (`final` False) add the
        off-node errors every `offnode_every` calls only."""
        monitor = spiking.ActivityMonitor(net)
        with torch.no_grad(), monitor:
            u = self.evaluate(net)
        out = {"rel_l2": relative_l2(u, self.target, self.weights, self.comm)}
        activity = global_activity(monitor, self.comm)
        if activity["layers"]:
            out["activity"] = {k: activity[k] for k in ("mean", "layers")}
        self._measured = getattr(self, "_measured", 0) + 1
        every = self.offnode_every
        if final or (every and (self._measured - 1) % every == 0):
            out.update(self.off_node_measures(net) if self.offnode else self.lift_measures())
        return out

    def lift_measures(self) -> dict:
        """``lift_rel_l2``: the boundary lift alone (N = 0) at the nodes, where there is one."""
        boundary = getattr(self, "boundary", None)
        if boundary is None or boundary.lift is None or self.target is None:
            return {}
        zero = torch.zeros_like(boundary.lift)
        return {"lift_rel_l2": relative_l2(boundary.apply(zero)[: self.n_owned], self.target,
                                           self.weights, self.comm)}

    def off_node_measures(self, net: torch.nn.Module) -> dict:
        """``offnode`` errors and ``lift_rel_l2`` (nodal, N = 0) where they are defined."""
        out = self.lift_measures()
        if getattr(self, "reference", None) is None or self.target is None:
            return out
        from coupling.pointwise import OffNodeProbe  # deferred: loads SciPy

        if getattr(self, "_offnode", None) is None:
            self._offnode = OffNodeProbe(self, max_points=self.offnode_points)
        out["offnode"] = self._offnode.measure(self, net)
        return out

    def evaluate_at(self, net: torch.nn.Module, points, mode: str = "network"):
        """Collective: the field at arbitrary points, as the raw network (``"network"``) or the
        P1 interpolant of its nodal values (``"interpolant"``); outside points refused."""
        from coupling.pointwise import evaluate_at  # deferred: loads SciPy

        return evaluate_at(self, net, points, mode)

    def loss(self, net: torch.nn.Module, batch: torch.Tensor | None = None):
        """This rank's loss and its named terms (plus the consistency term when set)."""
        loss, terms = self.residual.loss(net, batch)
        term = getattr(self, "consistency", None)
        if term is not None:
            c = term.penalty(self, net)
            loss = loss + c
            terms = {**terms, "consistency": c}
        return loss, terms


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
