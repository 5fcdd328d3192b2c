"""The float finite-volume update of a C-LIF run's own case: the baseline beside its rollout.

:func:`spiking.cfq_fv.fv_rollout` (explicit two-point-flux diffusion with the problem's
diffusivity k, float64, no quanta) on the run's geometry, boundary and source data and Δt,
from the same initial field over the same horizon, compared with the same reference at the
same record steps as the integer rollout (:meth:`coupling.residuals.cfq.RolloutWindows.
evaluate`). Its error is the discretisation error of the FV scheme the flux network is
meant to learn; a C-LIF network cannot be expected to beat it by more than luck.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from spiking.cfq_fv import fv_rollout

SCHEME = "float FV: explicit two-point flux k·(A/d)·(u_i − u_j), float64, no quanta"


def rel_l2(u: np.ndarray, r: np.ndarray, w: np.ndarray) -> float | None:
    """‖u − r‖_V / ‖r‖_V with cell volumes w (None where the reference is 0)."""
    den = float(np.sum(w * r**2))
    return math.sqrt(float(np.sum(w * (u - r) ** 2)) / den) if den else None


def fv_evaluate(disc) -> dict:
    """The float FV rollout of disc's case (a RolloutWindows): its rel. L2 error at the
    record steps (``rel_l2_curve`` at times ``t``), final and max over the rollout."""
    pb, sol = disc.pb, disc.solver
    u = torch.as_tensor(pb.initial(), dtype=torch.float64)
    w = pb.geo.volumes
    times, errors = [], []
    done = 0
    for target in disc.record_steps():
        u = fv_rollout(sol, u, int(target) - done, t0=done * pb.dt, diffusivity=pb.k)
        done = int(target)
        t = done * pb.dt
        times.append(t)
        errors.append(rel_l2(u.numpy(), pb.reference(pb.snap(t) if not pb.steady else 0.0), w))
    known = [e for e in errors if e is not None]
    return {"scheme": SCHEME, "rel_l2": errors[-1], "rel_l2_max": max(known) if known else None,
            "t": times, "rel_l2_curve": errors}
