"""`[training]`: the loop's settings, and the coarse-to-fine hierarchy `levels` (one schema each).

Checked with the rest of the run config (:mod:`coupling.config`); a bad value is one
:class:`fem.errors.ConfigError` naming its dotted key, e.g. ``training.levels[1].size``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from coupling.config.optimizer import OPTIMIZER
from coupling.config.tables import SEED
from fem.errors import ConfigError
from fem.schema import MAX_COUNT, Positive, PositiveInt, Table, between

SCHEDULES = ("none", "cosine", "step")
DTYPES = ("float32", "float64")

# a count of rows/cells (an integer) or a fraction of them (a float in (0, 1))
CountOrFraction = Annotated[
    Annotated[between(0, MAX_COUNT, integer=True), Tag("<count>")]
    | Annotated[Annotated[float, Field(gt=0.0, lt=1.0, allow_inf_nan=False)], Tag("<fraction>")],
    Discriminator(lambda v: "<fraction>" if isinstance(v, float) else "<count>")]



class LevelSpec(Table):
    """One entry of ``training.levels``: a mesh of the same geometry and its training."""

    table_key: ClassVar[str] = "training.levels[]"

    size: Positive | None = None  # mesh size of this level (the last level is [mesh]: omit)
    steps: PositiveInt | None = None  # steps on this level (the last: training.steps wins)
    batch: CountOrFraction | None = None  # this level's batch (default training.batch)
    lr: Positive | None = None  # this level's learning rate (default training.lr)
    # the network between this level's nodes drawn to their interpolant (see
    # training.consistency_weight); default 1 on the coarse levels, where the next level
    # starts from the network there, and training.consistency_weight on the last
    consistency_weight: between(0.0, 1e6) | None = None


class TrainingSpec(Table):
    """Optimizer, schedule, batching, precision, seed, logging and checkpoint cadence."""

    table_key: ClassVar[str] = "training"

    steps: PositiveInt = 2000  # with levels: the total over them (default: their sum)
    lr: Positive = 1e-3
    optimizer: OPTIMIZER = "adam"  # "adam" | "preconditioned", or a [training.optimizer] table
    lbfgs_steps: between(0, MAX_COUNT, integer=True) = 0
    schedule: Literal[SCHEDULES] = "none"
    gamma: Positive = 0.5
    step_size: PositiveInt = 1000
    # rows (sp/autograd), cells (galerkin: element-sampled energy) or nodes (preconditioned
    # optimizer: the regression's node batch) per step, or a fraction
    batch: CountOrFraction = 0
    refresh: between(0, MAX_COUNT, integer=True) = 20  # galerkin batches: control variate
    cluster_cells: PositiveInt = 32  # galerkin batches: cells sampled together
    compile: bool = False  # torch.compile the network for the loss (eager fallback)
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    threads: PositiveInt | None = None  # torch/BLAS threads per rank (default 1)
    consistency_weight: between(0.0, 1e6) = 0.0  # network vs interpolant inside cells
    activity_weight: between(0.0, 1e6) = 0.0  # λ of the activity regulariser
    activity_target: between(0.0, 1.0) | None = None  # penalise only rates above it
    dtype: Literal[DTYPES] = "float32"
    seed: SEED = 0
    log_every: PositiveInt = 50
    checkpoint_every: PositiveInt = 500
    keep_checkpoints: PositiveInt = 3
    progress: bool = True
    max_memory_gb: Positive | None = None  # raise (or lower) the memory limit of a run
    # coarse to fine (coupling.training.levels): the same geometry meshed at decreasing sizes,
    # one network trained through them; the last level is [mesh] itself
    levels: list[LevelSpec] = []
    # what Adam carries into the next level: nothing ("reset": a fresh Adam) or its moments
    # ("keep": smoother where the gradients keep their scale, too large steps after annealing)
    level_moments: Literal["keep", "reset"] = "reset"
    # the off-node errors (vs FEM inside the cells) in every n-th metrics row of a level
    # (0: in the final measure only)
    offnode_every: between(0, MAX_COUNT, integer=True) = 10
    # the most points the off-node probe evaluates over all ranks (default: every cell's
    # quadrature points; fewer: a fixed sample of the cells, the same on any rank count)
    offnode_points: PositiveInt | None = None

    @model_validator(mode="after")
    def _hierarchy(self) -> TrainingSpec:
        """Levels coarse to fine, each (but the last) with a size and steps; steps, when
        given, is the total over the levels and sets the last level's length."""
        levels = self.levels
        if not levels:
            return self
        if len(levels) < 2:
            raise ConfigError("levels", "expected at least 2 levels (coarse to fine); leave "
                              "it out to train on [mesh] alone")
        for i, lv in enumerate(levels):
            last = i == len(levels) - 1
            if lv.size is None and not last:
                raise ConfigError(f"levels[{i}].size", "missing (every level but the last, "
                                  "which is [mesh], needs its mesh size)")
            if lv.steps is None and not (last and "steps" in self.model_fields_set):
                raise ConfigError(f"levels[{i}].steps", "missing (the last level may leave it "
                                  "to training.steps, the total)")
            for key in ("batch", "consistency_weight"):
                if last and getattr(lv, key) is not None:
                    raise ConfigError(f"levels[{i}].{key}", f"the last level is [mesh], "
                                      f"discretised as training.{key} says: set that instead")
            before = levels[i - 1].size if i else None
            if i and lv.size is not None and not lv.size < before:
                raise ConfigError(f"levels[{i}].size", f"expected below the previous level's "
                                  f"{before} (sizes decrease from coarse to fine), got {lv.size}")
        coarse = sum(lv.steps for lv in levels[:-1])
        if "steps" not in self.model_fields_set:
            self.steps = coarse + levels[-1].steps
        elif self.steps <= coarse:
            raise ConfigError("steps", f"{self.steps} leaves no steps for the last level (the "
                              f"levels before it take {coarse}); training.steps is the total")
        return self

    def check_levels(self, mesh_size: float | None, parametric: bool) -> None:
        """The hierarchy against the run: it ends at [mesh] (one line naming the key)."""
        if not self.levels:
            return
        if parametric:
            raise ConfigError("training.levels", "a parametric run trains on one mesh; "
                              "remove training.levels")
        if mesh_size is None:
            raise ConfigError("mesh.size", "missing (training.levels refines down to it)")
        last, before = self.levels[-1], self.levels[-2].size
        if last.size is not None and last.size != mesh_size:
            raise ConfigError(f"training.levels[{len(self.levels) - 1}].size", f"the last "
                              f"level is [mesh]: leave it out or set mesh.size ({mesh_size}), "
                              f"got {last.size}")
        if not mesh_size < before:
            raise ConfigError(f"training.levels[{len(self.levels) - 2}].size", f"expected above "
                              f"mesh.size {mesh_size} (the last level), got {before}")

    def level_steps(self) -> list[int]:
        """Steps of each level (the last: what training.steps leaves)."""
        coarse = [lv.steps for lv in self.levels[:-1]]
        return [*coarse, self.steps - sum(coarse)]
