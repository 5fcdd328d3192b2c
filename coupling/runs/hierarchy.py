"""``[training] levels``: a run's coarse-to-fine hierarchy as a :class:`coupling.Levels` plan.

Every level but the last is the run's ``[mesh]`` at the level's ``size``, built when the
level starts: the mesh through the user mesh cache and the FEM reference through the run's
reference folder and the user cache (:mod:`fem.cache`), so a rerun or a resume rebuilds
neither; its residual operators are assembled once, when the level starts, and dropped
when the next one starts. A coarse level adds the consistency term (network vs the
interpolant of its nodal values inside the cells, :mod:`coupling.consistency`) of weight
:data:`COARSE_CONSISTENCY` unless it sets ``consistency_weight``, at as many random
in-cell points a step as the level has nodes on the rank: the energy fixes the network at
the coarse nodes only, and the next level starts from it everywhere. (The term's points
are drawn per rank: runs on different rank counts agree in expectation, not to round-off.) The last
level is the run's own discretisation (``[mesh]``).
"""

from __future__ import annotations

from functools import partial

from coupling.training.levels import Level, Levels
from fem.problems import build_problem
from fem.reference import reference

#: the consistency weight of a coarse level unless it sets one: the next level starts from
#: the network *between* this level's nodes, which the energy alone leaves free
COARSE_CONSISTENCY = 1.0


def levels_of(trainer) -> Levels:
    """The plan of a set-up :class:`coupling.runs.network.Trainer` with training.levels."""
    t, mesh = trainer.cfg.training, trainer.cfg.mesh
    steps = t.level_steps()
    plan = [Level(partial(level_disc, trainer, spec.size, _batch(t, spec),
                          COARSE_CONSISTENCY if spec.consistency_weight is None
                          else spec.consistency_weight), steps[i], _batch(t, spec), spec.lr,
                  spec.size) for i, spec in enumerate(t.levels[:-1])]
    last = t.levels[-1]
    plan.append(Level(trainer.disc, steps[-1], _batch(t, last), last.lr, mesh.size))
    return Levels(plan, moments=t.level_moments)


def level_disc(trainer, size: float, batch: int | float, consistency: float | None = None):
    """The run's problem on its mesh at `size`, discretised as configured (collective)."""
    cfg = trainer.cfg
    dmesh = cfg.mesh.model_copy(update={"size": size}).build(trainer.comm)
    ref = reference(dmesh, cfg.problem, cache_dir=trainer.reference_cache)
    disc = trainer.discretisation(build_problem(dmesh, cfg.problem), ref, batch, consistency)
    term = getattr(disc, "consistency", None)
    if term is not None and not term.batch:  # as many points a step as the level has nodes
        term.batch = max(1, len(disc.x_nodes))
    return disc


def _batch(training, spec) -> int | float:
    return training.batch if spec.batch is None else spec.batch
