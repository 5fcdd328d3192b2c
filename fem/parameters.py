"""Parameter boxes: the ``[parameters]`` table of a parametric problem, sampling, checks.

A parametric problem depends on named parameters μ = (μ_1, ..., μ_p) in a box
P = Π [low_i, high_i]. Names say what a parameter changes (see
:mod:`fem.problems.parametric`): ``E.<phase>``, ``nu.<phase>``, ``strain.<11|22|33|23|13|12>``
for elasticity and homogenisation, ``k.<phase>`` (or ``k``), ``source`` and
``value.<boundary>`` for scalar Poisson problems.

    [parameters]
    sampling = "sobol"            # training draws: "sobol" (scrambled) or "uniform"
    batch = 4                     # parameter points per step and rank
    validation = 4                # points measured at every logging step
    held_out = 20                 # points of the final validation (never trained on)
    [parameters.ranges]
    "E.inclusion" = { low = 5.0, high = 50.0, scale = "log" }
    "strain.11" = [-1.0, 1.0]

A range is ``[low, high]`` or a table with ``scale = "log"`` (sampled and fed to the network
in log μ: a contrast of 5–50 is a decade). ``low == high`` fixes a parameter (a single-point
box). Validation and held-out points are scrambled-Sobol points from seeds of their own, so
they never coincide with training draws by construction of the streams.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, Field, PrivateAttr, model_validator

from .errors import ConfigError
from .schema import Finite, Table, finite, validate

SAMPLINGS = ("sobol", "uniform")


def _range(r: Any) -> Any:
    """``[low, high]`` as the table ``{low, high}``; a table as it is."""
    if isinstance(r, dict):
        return r
    if not (isinstance(r, list) and len(r) == 2 and all(map(finite, r))):
        raise ConfigError("", f"expected [low, high] (finite numbers) or a table "
                          f"{{ low, high, scale }}, got {r!r}")
    return {"low": float(r[0]), "high": float(r[1])}


class RangeTable(Table):
    """One parameter's range, ``[low, high]`` or ``{ low, high, scale }``: the parameter
    itself (its `name` is its key in ``[parameters.ranges]``)."""

    low: Finite
    high: Finite
    scale: Literal["linear", "log"] = "linear"
    _name: str = PrivateAttr("")

    @model_validator(mode="after")
    def _ordered(self) -> RangeTable:
        if self.low > self.high:
            raise ConfigError("", f"inverted range: low {self.low} > high {self.high}")
        if self.scale == "log" and self.low <= 0:
            raise ConfigError("", f"a log range needs low > 0, got {self.low}")
        return self

    @property
    def name(self) -> str:
        """The parameter's name (``E.inclusion``, ``k``, ``strain.11``)."""
        return self._name

    def to_unit(self, v: np.ndarray) -> np.ndarray:
        """Values mapped to [0, 1] over the range (in log for a log scale; 0 if fixed)."""
        f = np.log if self.scale == "log" else (lambda a: a)
        lo, hi = f(self.low), f(self.high)
        return (f(np.asarray(v, float)) - lo) / (hi - lo) if hi > lo else np.zeros_like(v)

    def from_unit(self, t: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_unit`."""
        if self.scale == "log":
            return np.exp(np.log(self.low) + t * (np.log(self.high) - np.log(self.low)))
        return self.low + t * (self.high - self.low)


class ParametersTable(Table):
    """The ``[parameters]`` table: the parameter box P with its sampling settings (see the
    module docstring), validated once."""

    table_key = "parameters"
    ranges: dict[str, Annotated[RangeTable, BeforeValidator(_range)]]
    sampling: Literal[SAMPLINGS] = "sobol"
    batch: int = Field(4, ge=1, le=4096)
    validation: int = Field(4, ge=1, le=1000)
    held_out: int = Field(20, ge=1, le=10000)
    draws: Literal["per_rank", "shared"] = "per_rank"
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _ranges(self) -> ParametersTable:
        if not self.ranges:
            raise ConfigError("ranges", "empty: name at least one parameter with its range")
        # canonical order: a TOML writer may reorder the table (a run's config.toml), the
        # network's μ inputs must not move
        self.ranges = dict(sorted(self.ranges.items()))
        for name, r in self.ranges.items():
            r._name = name
        return self

    @property
    def parameters(self) -> list[RangeTable]:
        """The parameters in their canonical (sorted) order."""
        return list(self.ranges.values())

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def __len__(self) -> int:
        return len(self.parameters)

    def centre(self) -> np.ndarray:
        """The box centre (in the scale of each parameter)."""
        return self.from_unit(np.full((1, len(self)), 0.5))[0]

    def from_unit(self, t: np.ndarray) -> np.ndarray:
        """Points of the unit cube (n, p) → parameter values (n, p)."""
        return np.column_stack([p.from_unit(t[:, i]) for i, p in enumerate(self.parameters)])

    def to_unit(self, mu: np.ndarray) -> np.ndarray:
        """Parameter values (n, p) → the unit cube (the network's μ input, before [-1, 1])."""
        mu = np.atleast_2d(mu)
        return np.column_stack([p.to_unit(mu[:, i]) for i, p in enumerate(self.parameters)])

    def points(self, n: int, stream: int, method: str | None = None) -> np.ndarray:
        """n points of the box from the seeded `stream` (0: training, 1: validation,
        2: held out): scrambled Sobol (a base-2 sequence, balanced in every dimension) or
        uniform random."""
        seed = np.random.SeedSequence([self.seed, stream]).generate_state(1)[0]
        if (method or self.sampling) == "sobol":
            from scipy.stats import qmc  # deferred: loads SciPy

            with warnings.catch_warnings():  # n need not be a power of 2 here (fixed sets)
                warnings.simplefilter("ignore", UserWarning)
                t = qmc.Sobol(len(self), scramble=True, seed=int(seed)).random(n) if n else \
                np.zeros((0, len(self)))
        else:
            t = np.random.default_rng(int(seed)).random((n, len(self)))
        return self.from_unit(t)

    def validation_points(self) -> np.ndarray:
        """The fixed validation set (measured at every logging step)."""
        return self.points(self.validation, 1)

    def held_out_points(self) -> np.ndarray:
        """The held-out set of the final validation (never used in training)."""
        return self.points(self.held_out, 2)

    def parse(self, values: dict[str, float], key: str = "--param") -> np.ndarray:
        """A parameter point from {name: value}: every name known and given, inside the box."""
        unknown = [n for n in values if n not in self.names]
        if unknown:
            raise ConfigError(key, f"unknown parameter {unknown[0]!r} (this run has "
                              f"{', '.join(self.names)})")
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ConfigError(key, f"missing parameter {missing[0]!r} (give every one of "
                              f"{', '.join(self.names)})")
        for p in self.parameters:
            v = values[p.name]
            if not np.isfinite(v) or not p.low <= v <= p.high:
                raise ConfigError(f"{key} {p.name}", f"{v} is outside the trained box "
                                  f"[{p.low}, {p.high}]")
        return np.array([values[n] for n in self.names], float)

    def as_dicts(self, mu: np.ndarray) -> list[dict[str, float]]:
        """Rows of `mu` as {name: value} dictionaries."""
        return [dict(zip(self.names, map(float, row), strict=True)) for row in np.atleast_2d(mu)]


def parse_parameters(table: dict, key: str = "parameters") -> ParametersTable:
    """Validate a ``[parameters]`` table (see the module docstring)."""
    return validate(ParametersTable, table, key)
