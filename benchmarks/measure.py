"""What a benchmark cell measures besides the trainer's own metrics.

Peak resident memory (reset per cell through ``/proc/self/clear_refs`` on Linux), the
wall time to reach an error target, the trainer's integral error measure on any field,
the ANN→SNN conversion baseline at several time-step counts, the energy report of a VSN
network, and the elasticity extras of problem 6 (stress / energy-norm / von Mises errors,
apparent Young's modulus against the Hashin–Shtrikman bounds, :mod:`validation.mechanics`).
"""

from __future__ import annotations

import re
import resource
from pathlib import Path

import spiking

from .grid import CONVERSION_STEPS


def reset_peak_memory() -> bool:
    """Reset this process's peak RSS (Linux ≥ 4.0); False where it cannot be reset."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_memory_mb() -> float:
    """Peak resident memory of this process since the last reset (MiB)."""
    try:
        text = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024.0
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_to(records: list[dict], target: float) -> float | None:
    """Wall time of the first logged step with rel_l2 ≤ target (None: not reached)."""
    for r in records:
        if r.get("rel_l2") is not None and r["rel_l2"] <= target:
            return float(r["wall_s"])
    return None


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's metrics.jsonl (empty if there is none)."""
    from coupling.training.callbacks import METRICS  # deferred: loads torch
    from coupling.training.callbacks import read_metrics as read  # deferred: loads torch

    return read(run_dir / METRICS)


def history(records: list[dict]) -> list[dict]:
    """The error history kept in a cell's record: step, rel_l2 and wall time per log."""
    return [{"step": r["step"], "rel_l2": r.get("rel_l2"), "wall_s": r["wall_s"]}
            for r in records]


def weighted_rel_l2(disc, u, comm) -> float:
    """√(Σ w (u − u_ref)² / Σ w u_ref²) over all ranks (the trainer's measure)."""
    from coupling.measure import relative_l2  # deferred: loads DOLFINx, torch

    return relative_l2(u, disc.target, disc.weights, comm)


class RateCoded:
    """The converted IF network as a plain callable x → u (T steps of rate coding)."""

    def __init__(self, snn, steps: int) -> None:
        self.snn, self.steps = snn, steps

    def __call__(self, x):
        return self.snn(x, self.steps)


def _points_of(disc):
    return disc.x_eval if hasattr(disc, "x_eval") else disc.x_nodes


def conversion(trainer, comm):
    """Convert the trained ReLU ANN to IF neurons: (per-T error/activity/energy, the SNN)."""
    import torch  # deferred: loads torch

    from coupling.measure import global_activity  # deferred: loads DOLFINx, torch
    from spiking.conversion import convert_relu_mlp  # deferred: loads torch
    from spiking.energy import count_energy  # deferred: loads torch

    net, disc = trainer.net, trainer.disc
    snn = convert_relu_mlp(net, _points_of(disc))
    fourier = None if net.fourier is None else (net.fourier.in_dim, net.fourier.B.shape[0])
    per_t = {}
    for T in CONVERSION_STEPS:
        mon = spiking.ActivityMonitor(snn)
        with torch.no_grad(), mon:
            u = disc.evaluate(RateCoded(snn, T))
        act = global_activity(mon, comm)
        rep = count_energy(net.widths, neuron="if", steps=T,
                           events=list(act["events_per_point"].values()),
                           activity=list(act["layers"].values()), fourier=fourier)
        per_t[T] = {"rel_l2": weighted_rel_l2(disc, u, comm),
                    "activity": {"mean": act["mean"], "layers": act["layers"]},
                    "energy_ratio": rep.ratio}
    return per_t, snn


def energy(trainer):
    """Energy report of a VSN network over the evaluation points (this rank's points)."""
    import torch  # deferred: loads torch

    mon = spiking.ActivityMonitor(trainer.net)
    with torch.no_grad(), mon:
        trainer.disc.evaluate(trainer.net)
    return spiking.energy_report(trainer.net, mon)


def elasticity_extras(trainer, coefficients) -> dict:
    """Stress / energy errors and the apparent Young's modulus of a displacement field."""
    from validation.errors import elasticity_errors  # deferred: loads DOLFINx, Gmsh
    from validation.fields import network_function, on_space  # deferred: loads DOLFINx, torch

    # deferred: loads DOLFINx, Gmsh
    # deferred: loads DOLFINx, Gmsh
    from validation.mechanics import apparent_young_modulus, hashin_shtrikman_young, phase_fractions

    problem, dmesh = trainer.disc.problem, trainer.dmesh
    V = problem.V
    u_net = network_function(coefficients, V, "u_network")
    u_ref = on_space(trainer.ref.u, V, "u_fem")
    errs = elasticity_errors(u_net, u_ref, problem.lmbda, problem.mu)
    materials = trainer.cfg.problem.materials
    young = lambda u: apparent_young_modulus(u, problem.lmbda, problem.mu, dmesh.mesh)  # noqa: E731
    return {"stress_rel": errs["stress"]["relative"], "energy_rel": errs["energy"]["relative"],
            "von_mises_rel": errs["von_mises"]["relative"],
            "young": {"network": young(u_net), "fem": young(u_ref),
                      "hashin_shtrikman": hashin_shtrikman_young(
                          materials, phase_fractions(dmesh, list(materials)))}}
