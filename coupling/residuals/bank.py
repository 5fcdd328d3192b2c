"""Surrogates across microstructures: one network for a bank of meshed RVEs, no FEM solve.

Each member m of the bank is one microstructure (its own Gmsh mesh, per-phase affine
terms and strain channels: a :class:`coupling.residuals.parametric.ParametricDiscretisation`).
The network sees, instead of the coordinates alone, the microstructure's features at each
node — inclusion depth, signed distance to the nearest interface, offsets and radii of the
k nearest inclusions, local volume fraction (:mod:`coupling.microstructure_features`; no
solve) — and the operator parameters, so one network serves every member. The loss is the
expected scale-normalised energy over (microstructure, μ_op),

    E_m E_μ [ (½ uᵀK_m(μ)u − b_m(μ)ᵀu) / s_m(μ_op) ],

with the load (strain) channels' expectation taken exactly, as in the parametric loss,
whose minimiser is every member's FEM solution at every μ. Under MPI the bank is dealt
round-robin (member i on rank i mod N, each mesh whole on its rank: ``COMM_SELF``); each
step every rank draws ``draws`` of its own members and a μ batch for each, and the summed
gradient over ranks is that of the mean over all draws (each rank's loss is divided by N).
A bank of one member in serial is the parametric training itself (same draws, same loss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import spiking
from coupling.config.bank import FeaturesSpec
from coupling.measure import global_activity
from coupling.microstructure_features import feature_bounds, microstructure_features
from coupling.residuals.parametric import ParametricDiscretisation, discretise_parametric
from fem.errors import ConfigError
from meshes.fenics import MPI


def microstructure_of(dmesh) -> dict[str, Any]:
    """Centres, radii and periodic axes of a spherical/disk-inclusion RVE mesh."""
    info = dmesh.info
    if "centres" not in info or "radii" not in info:
        raise ConfigError("mesh.kind", f"{dmesh.kind!r} has no inclusions to describe "
                          "(a bank needs rve or rve2d meshes)")
    gdim = dmesh.mesh.geometry.dim
    return {"centres": np.asarray(info["centres"], float)[:, :gdim],
            "radii": np.asarray(info["radii"], float),
            "periodic_axes": list(info.get("periodic_axes") or []), "gdim": gdim}


def feature_inputs(dmesh, features: FeaturesSpec):
    """The `inputs` hook of :func:`discretise_parametric`: (x, features(x)) and a box that is
    the same for every member of a bank (the network's normalisation must not move)."""
    micro = microstructure_of(dmesh)

    def inputs(x: np.ndarray, box):
        f = microstructure_features(x, micro["centres"], micro["radii"],
                                    micro["periodic_axes"], micro["gdim"], k=features.k,
                                    window=features.window)
        lo, hi = feature_bounds(micro["gdim"], features.k, features.window,
                                features.radius_max)
        return np.column_stack([x, f]), (list(box[0]) + list(lo), list(box[1]) + list(hi))

    return inputs


@dataclass
class BankDiscretisation:
    """A bank of microstructures made trainable (a :class:`coupling.training.loop.Trainable`)."""

    members: list[ParametricDiscretisation]  # this rank's members
    index: list[int]  # their positions in the bank
    count: int  # members in the whole bank
    draws: int  # microstructures drawn per step and rank
    seed: int
    comm: Any
    validated: list[int] = field(default_factory=list)  # local members with FEM targets

    def __post_init__(self) -> None:
        if not self.members:
            raise ConfigError("bank.count", f"{self.count} microstructures for "
                              f"{self.comm.size} ranks: every rank needs at least one")
        shapes = {(m.in_dim, m.out_dim, tuple(map(tuple, m.bounds))) for m in self.members}
        if len(shapes) != 1:
            raise ConfigError("bank", "members disagree on the network's inputs or outputs "
                              "(same problem and mesh kind needed)")

    first = property(lambda self: self.members[0])
    in_dim = property(lambda self: self.first.in_dim)
    out_dim = property(lambda self: self.first.out_dim)
    block_size = property(lambda self: self.first.block_size)
    bounds = property(lambda self: self.first.bounds)
    problem = property(lambda self: self.first.problem)

    def sample(self, step: int, batch: int | float = 0) -> list[tuple[int, torch.Tensor]]:
        """This rank's draws for `step`: (local member, its μ batch) pairs, from (seed, step,
        rank) only, so a resumed run continues the same sequence."""
        rng = np.random.default_rng([self.seed, step, self.comm.rank])
        picks = rng.integers(len(self.members), size=self.draws)
        stream = step * self.comm.size + self.comm.rank  # distinct μ draws on every rank
        return [(int(i), self.members[i].sample(stream)) for i in picks]

    def loss(self, net: torch.nn.Module, batch: list | None = None):
        """This rank's share of the mean scale-normalised energy over its draws."""
        batch = self.sample(0) if batch is None else batch
        total = sum(self.members[i].loss(net, mu)[0] for i, mu in batch)
        loss = total / (len(batch) * self.comm.size)
        return loss, {"energy": loss}

    def measure(self, net: torch.nn.Module, final: bool = True) -> dict:
        """Errors of the validated members at their validation points (median, max over
        all ranks) and the activity."""
        monitor = spiking.ActivityMonitor(net)
        errs: list[float] = []
        with monitor:
            for i in self.validated:
                m = self.members[i]
                errs += m.errors(net, m.validation, m.targets)
        errs = [e for part in self.comm.allgather(errs) for e in part]
        out: dict = {}
        if errs:
            out = {"rel_l2": float(np.median(errs)), "rel_l2_max": float(max(errs))}
        activity = global_activity(monitor, self.comm)
        if activity["layers"]:
            out["activity"] = {k: activity[k] for k in ("mean", "layers")}
        return out


def discretise_bank(problems: list, index: list[int], count: int, *, features: FeaturesSpec | None,
                    draws: int = 1, seed: int = 0, validate: int = 2, dtype=None,
                    reference_cache=None, comm=None) -> BankDiscretisation:
    """This rank's members (`problems`: ParametricProblems on meshes of ``COMM_SELF``, at bank
    positions `index`) made trainable; the first `validate` members of the bank get FEM
    targets at the validation points (cached) for the logged errors. `features` None: the
    coordinates alone (then a bank of one is exactly the parametric training)."""
    members = [discretise_parametric(p, dtype=dtype, reference_cache=reference_cache,
                                     inputs=features and feature_inputs(p.dmesh, features),
                                     references=i < validate)
               for p, i in zip(problems, index, strict=True)]
    return BankDiscretisation(members, list(index), count, draws, seed, comm or MPI.COMM_WORLD,
                              [k for k, i in enumerate(index) if i < validate])


def dealt(count: int, comm) -> list[int]:
    """The bank positions this rank holds (round-robin)."""
    return list(range(comm.rank, count, comm.size))
