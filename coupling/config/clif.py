"""The run config of `model = "clif"` (PISNN's conservative spiking solver): its part of the
one run-config schema (:mod:`coupling.config`), ``[clif]`` and ``[training]`` beside
``[mesh]`` (a regular ``kind = "grid"`` or any mesh kind) and ``[problem]``; see
:mod:`coupling.residuals.cfq`. Errors are :class:`fem.errors.ConfigError` naming the key."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from coupling.config.tables import SEED, EnergySpec
from fem.config import MeshTable, ProblemTable
from fem.errors import ConfigError
from fem.schema import MAX_COUNT, Finite, NonNegative, Positive, PositiveInt, Table, between
from spiking import SURROGATE_KINDS


class GridTable(Table):
    """``[mesh] kind = "grid"``: a regular box of n cells per axis (1 to 3 axes)."""

    kind: Literal["grid"]
    n: Annotated[list[between(2, 10**6, integer=True)], Field(min_length=1, max_length=3)]
    lower: list[Finite] | None = None
    upper: list[Finite] | None = None

    @model_validator(mode="after")
    def _box(self) -> GridTable:
        d = len(self.n)
        self.lower = [0.0] * d if self.lower is None else self.lower
        self.upper = [1.0] * d if self.upper is None else self.upper
        for name in ("lower", "upper"):
            if len(getattr(self, name)) != d:
                raise ConfigError(name, f"expected {d} numbers, got {getattr(self, name)!r}")
        if any(b <= a for a, b in zip(self.lower, self.upper, strict=True)):
            raise ConfigError("upper", f"must exceed mesh.lower {self.lower}, got {self.upper}")
        return self


class CLIFSpec(Table):
    """The ``[clif]`` table."""

    resolution: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1e-4
    scale: NonNegative = 0.0
    broadcast: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0
    cfl: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.9
    hidden: Annotated[list[between(1, 100_000, integer=True)],
                      Field(min_length=1, max_length=100)] = [16, 16]
    activation: Literal["tanh", "softplus", "gelu", "silu"] = "tanh"
    geometry: bool = False
    beta: between(0.0, 1.0) = 1.0
    surrogate: Literal[SURROGATE_KINDS] = "straight_through"
    slope: Positive = 1.0
    train_until: Positive = 0.2
    window: PositiveInt = 20
    batch: PositiveInt = 8
    relax_time: Positive = 1.0
    modes: PositiveInt = 3
    records: between(2, MAX_COUNT, integer=True) = 11
    evaluate_every: between(0, MAX_COUNT, integer=True) = 0
    # a trained C-LIF run directory whose flux network this run uses (coupling.runs.
    # clif_transfer): unchanged with training.steps = 0, as initialisation with steps > 0
    flux_from: Annotated[str, Field(min_length=1)] | None = None
    # a C-LIF run trained on this same case: the report puts its error and drift beside
    # this run's and the float FV update's (coupling.cli.report_clif)
    compare_with: Annotated[str, Field(min_length=1)] | None = None


class CLIFTraining(Table):
    """The ``[training]`` keys a C-LIF run uses."""

    steps: between(0, MAX_COUNT, integer=True) = 300
    lr: Positive = 3e-3
    seed: SEED = 0
    log_every: PositiveInt = 25
    checkpoint_every: PositiveInt = 100
    keep_checkpoints: PositiveInt = 3
    progress: bool = True
    schedule: Literal["none", "cosine"] = "cosine"
    threads: PositiveInt | None = None  # torch/BLAS threads per rank (small grids run on 1)


@dataclass
class CLIFRunConfig:
    """A validated C-LIF run config."""

    mesh: MeshTable | None
    grid: dict | None
    problem: ProblemTable
    clif: CLIFSpec
    training: CLIFTraining
    raw: dict

    def resolved(self) -> dict:
        """The config with every [clif] and [training] default filled in."""
        doc = copy.deepcopy(self.raw)
        doc["clif"] = self.clif.model_dump(exclude_none=True)  # TOML has no null
        doc["training"] = self.training.model_dump(exclude_none=True)  # TOML has no null
        return doc


def _grid_tag(table: Any) -> str:
    return "<grid>" if isinstance(table, dict) and table.get("kind") == "grid" else "<mesh>"


class ClifRun(Table):
    """A ``model = "clif"`` run (validated as part of coupling.config's run schema)."""

    model: Literal["clif"]
    mesh: Annotated[Annotated[GridTable, Tag("<grid>")] | Annotated[MeshTable, Tag("<mesh>")],
                    Discriminator(_grid_tag)]
    problem: ProblemTable
    clif: CLIFSpec = CLIFSpec()
    training: CLIFTraining = CLIFTraining()
    energy: EnergySpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ClifRun:
        p, grid = self.problem, self.mesh if isinstance(self.mesh, GridTable) else None
        if p.type not in ("heat", "poisson"):
            raise ConfigError("problem.type", "model 'clif' solves heat and poisson (Laplace), "
                              f"got {p.type!r}")
        if isinstance(p.coefficients, dict):
            raise ConfigError("problem.coefficients", "model 'clif' needs one number (the flux "
                              "network has no phase input)")
        if p.type == "poisson":
            if grid is None:
                raise ConfigError("mesh.kind", "steady problems (poisson) need kind = \"grid\" "
                                  "(training transients are the box's eigenmodes)")
            if p.source and not (p.source[0].is_constant and float(
                    p.source[0](np.zeros((3, 1)))[0]) == 0.0):
                raise ConfigError("problem.source", "steady C-LIF runs solve Laplace: source "
                                  "must be 0")
        if grid is not None and p.exact is None:
            raise ConfigError("problem.exact", "missing: a grid run is compared with the exact "
                              "solution")
        if grid is not None:
            sides = ("*", *[f"{a}{s}" for a in "xyz"[:len(grid.n)] for s in "01"])
            for i, bc in enumerate(p.bcs):
                if bc.boundary not in sides:
                    raise ConfigError(f"problem.bcs[{i}].boundary", f"no boundary "
                                      f"{bc.boundary!r} on a {len(grid.n)}D grid")
        if p.type == "heat" and self.clif.train_until > p.time.t_end:
            raise ConfigError("clif.train_until", f"{self.clif.train_until} exceeds "
                              "problem.time.t_end")
        return self

    def record(self, doc: dict) -> CLIFRunConfig:
        """The CLIFRunConfig record of this run; `doc` is the document as given."""
        grid = self.mesh.model_dump(exclude={"kind"}) if isinstance(self.mesh, GridTable) \
            else None
        mesh = None if grid is not None else self.mesh
        return CLIFRunConfig(mesh, grid, self.problem, self.clif, self.training,
                             copy.deepcopy(doc))
