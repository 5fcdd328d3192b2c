"""Hyper-parameters of a coordinate network: :class:`MLPConfig`, the ``[network]`` table.

The one schema of ``[network]``: a run config nests this model as it is, so every key is
checked here once. The first bad key raises the one config error type,
:class:`neurofem_errors.ConfigError` (``spiking.ConfigError``), naming the dotted key
and the value in one line, standalone or nested in a run config, so a TOML typo never
becomes a traceback deep inside torch:

>>> MLPConfig(hidden=[32, 32], neuron="lif").num_steps
2
>>> MLPConfig(neuron="gru")
Traceback (most recent call last):
    ...
neurofem_errors.ConfigError: config network.neuron: expected one of ['vsn', 'lif', 'ann'], got 'gru'
>>> MLPConfig.from_dict({"hidden": [8], "seed": -1}, prefix="net")
Traceback (most recent call last):
    ...
neurofem_errors.ConfigError: config net.seed: expected an integer in [0, 4294967295], got -1

:class:`~spiking.networks.MLP` builds the network of a config (``MLP.from_config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .activations import ACTIVATIONS, get_activation
from .errors import ConfigError, bad_value
from .neurons import RESET_MODES
from .surrogate import SURROGATE_KINDS

NEURON_KINDS = ("vsn", "lif", "ann")
ENCODER_KINDS = ("hat", "onehot")
MAX_WIDTH, MAX_LAYERS, MAX_STEPS, MAX_SEED = 100_000, 100, 1000, 2**32 - 1
AUTO = "auto"  # output_scale chosen from the problem (coupling.auto_output_scale)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class _Checks:
    """Type/range checks of one config's keys; each raises ConfigError on failure."""

    def __init__(self, cfg: MLPConfig) -> None:
        self.cfg = cfg

    def bad(self, key: str, msg: str, value: Any = None) -> ConfigError:
        """The error for ``key`` (its value, or `value`, quoted) with the explanation."""
        return bad_value(key, msg, getattr(self.cfg, key) if value is None else value)

    def integer(self, key: str, lo: int, hi: int) -> None:
        """An integer (not a bool) in [lo, hi]."""
        v = getattr(self.cfg, key)
        if not _is_int(v) or not lo <= v <= hi:
            raise self.bad(key, f"expected an integer in [{lo}, {hi}]")

    def number(self, key: str, lo: float = -math.inf, hi: float = math.inf,
               positive: bool = False) -> None:
        """A finite number (not a bool) in [lo, hi], > 0 with `positive`."""
        v = getattr(self.cfg, key)
        if not _is_number(v) or not lo <= v <= hi or (positive and v <= 0):
            what = "a positive number" if positive else f"a number in [{lo:g}, {hi:g}]"
            raise self.bad(key, f"expected {what}")

    def flag(self, key: str) -> None:
        """true or false."""
        if not isinstance(getattr(self.cfg, key), bool):
            raise self.bad(key, "expected true or false")

    def choice(self, key: str, options: Sequence[str]) -> None:
        """One of ``options``."""
        if getattr(self.cfg, key) not in options:
            raise self.bad(key, f"expected one of {list(options)}")


class MLPConfig(BaseModel):
    """Validated hyper-parameters of :class:`MLP` (keys of the ``[network]`` TOML table)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    # Types are checked by the rules below (one place, with messages naming key and
    # value); the descriptions are what the config reference shows.
    in_dim: Any = Field(2, description="inputs (in a run config: from the mesh, not set)")
    out_dim: Any = Field(1, description="outputs (in a run config: the field's components)")
    hidden: Any = Field([64, 64], description=f"hidden widths, 1 to {MAX_LAYERS} integers "
                        f"in [1, {MAX_WIDTH}]")
    neuron: Any = Field("vsn", description=f"hidden units: one of {list(NEURON_KINDS)}")
    # Defaults = the configuration tests/spiking/test_training.py shows fitting a 2D field
    # to < 2 % with ~50 % activity.
    activation: Any = Field("tanh", description="φ of VSN/ANN units (VSN: φ(0) = 0)")
    num_steps: Any = Field(2, description=f"spiking time steps T_s, in [1, {MAX_STEPS}]")
    beta: Any = Field(1.0, description="membrane leak β in [0, 1]")
    threshold: Any = Field(0.02, description="firing threshold θ > 0 (spiking units)")
    learn_beta: Any = Field(False, description="β learnable per neuron")
    learn_threshold: Any = Field(False, description="θ learnable per neuron")
    surrogate: Any = Field("arctan", description=f"surrogate gradient: one of "
                           f"{list(SURROGATE_KINDS)}")
    slope: Any = Field(None, description="surrogate slope k > 0 (default: the kind's own)")
    reset: Any = Field("subtract", description=f"LIF reset: one of {list(RESET_MODES)}")
    detach_reset: Any = Field(True, description="no gradient through the reset")
    bounds: Any = Field(None, description="input box [lo, hi] (in a run config: the mesh's)")
    fourier_features: Any = Field(0, description=f"random Fourier features, in [0, "
                                  f"{MAX_WIDTH}]")
    fourier_scale: Any = Field(1.0, description="σ of the Fourier frequencies, > 0")
    fourier_learnable: Any = Field(False, description="Fourier frequencies learnable")
    fourier_keep_input: Any = Field(False, description="feed the inputs beside the features")
    output_scale: Any = Field(1.0, description="nonzero number, or one per output component, "
                              "or \"auto\": from a preconditioned solve of the problem "
                              "(what a galerkin run uses when it is unset)")
    output_shift: Any = Field(0.0, description="number, or one per output component")
    seed: Any = Field(None, description=f"initialisation seed in [0, {MAX_SEED}] (default: "
                      "training.seed)")
    encoder: Any = Field(None, description="spiking input encoder {kind = \"hat\" | "
                         "\"onehot\", levels in [2, 10000]}")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:  # built in Python: the error itself, not pydantic's
            raise _unwrap(exc) from None

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ConfigError("", f"expected a table, got {data!r}")
        for key in data:
            if key not in cls.model_fields:
                raise ConfigError(
                    str(key), f"unknown key (allowed: {', '.join(cls.model_fields)})")
        return data

    @model_validator(mode="after")
    def _checked(self) -> MLPConfig:
        c = _Checks(self)
        self._validate_shape(c)
        self._validate_neuron(c)
        self._validate_bounds(c)
        c.integer("fourier_features", 0, MAX_WIDTH)
        c.number("fourier_scale", positive=True)
        c.flag("fourier_learnable")
        c.flag("fourier_keep_input")
        self._validate_output(c)
        if self.seed is not None:
            c.integer("seed", 0, MAX_SEED)
        self._validate_encoder()
        return self

    def _validate_shape(self, c: _Checks) -> None:
        """in_dim, out_dim and the hidden widths (normalised to a list)."""
        c.integer("in_dim", 1, MAX_WIDTH)
        c.integer("out_dim", 1, MAX_WIDTH)
        h = self.hidden
        if isinstance(h, int | str) or not isinstance(h, Sequence):
            raise c.bad("hidden", "expected a list of layer widths, e.g. [64, 64]")
        if not 1 <= len(h) <= MAX_LAYERS:
            raise c.bad("hidden", f"expected 1 to {MAX_LAYERS} layer widths")
        for i, w in enumerate(h):
            if not _is_int(w) or not 1 <= w <= MAX_WIDTH:
                raise bad_value(f"hidden[{i}]", "expected a positive integer width "
                                f"(at most {MAX_WIDTH})", w)
        self.hidden = list(h)

    def _validate_neuron(self, c: _Checks) -> None:
        """The hidden-unit kind and its neuron parameters."""
        c.choice("neuron", NEURON_KINDS)
        c.choice("activation", sorted(ACTIVATIONS))
        if self.neuron == "vsn":
            try:
                get_activation(self.activation, zero_at_zero=True, who="VSN activation")
            except ValueError as err:
                raise c.bad("activation", str(err)) from None
        c.integer("num_steps", 1, MAX_STEPS)
        c.number("beta", 0.0, 1.0)
        c.number("threshold", positive=self.neuron != "ann")  # θ = 0: a sign detector, not a VSN
        for key in ("learn_beta", "learn_threshold", "detach_reset"):
            c.flag(key)
        c.choice("surrogate", SURROGATE_KINDS)
        if self.slope is not None:
            c.number("slope", positive=True)
        c.choice("reset", RESET_MODES)

    def _validate_bounds(self, c: _Checks) -> None:
        """bounds = [lo, hi] with finite lo < hi per coordinate (normalised to floats)."""
        if self.bounds is None:
            return
        b = self.bounds
        ok = (isinstance(b, Sequence) and len(b) == 2
              and all(isinstance(r, Sequence) and len(r) == self.in_dim for r in b))
        if not ok:
            raise c.bad("bounds", f"expected [lo, hi], each a list of {self.in_dim} numbers")
        if not all(_is_int(v) or isinstance(v, float) for r in b for v in r):
            raise c.bad("bounds", "expected numbers")
        lo, hi = [float(v) for v in b[0]], [float(v) for v in b[1]]
        pairs = zip(lo, hi, strict=True)
        if not all(math.isfinite(a) and math.isfinite(h) and h > a for a, h in pairs):
            raise c.bad("bounds", "need finite lo < hi in every coordinate")
        self.bounds = [lo, hi]

    def _validate_output(self, c: _Checks) -> None:
        """output_scale (nonzero) and output_shift: a number or one per output component."""
        for key in ("output_scale", "output_shift"):
            v = getattr(self, key)
            if key == "output_scale" and v == AUTO:  # resolved from the problem (coupling)
                continue
            vals = v if isinstance(v, Sequence) and not isinstance(v, str) else [v]
            if len(vals) not in (1, self.out_dim) or not all(_is_number(a) for a in vals):
                raise c.bad(key, f"expected a number or a list of {self.out_dim} numbers "
                            "(one per output component)")
            if key == "output_scale" and any(a == 0 for a in vals):
                raise c.bad(key, "scale must be nonzero")

    def _validate_encoder(self) -> None:
        """``[network.encoder]``: kind (hat | onehot) and levels in [2, 10000]."""
        e = self.encoder
        if e is None:
            return
        if not isinstance(e, Mapping):
            raise bad_value("encoder", "expected a table {kind, levels}", e)
        for key in e:
            if key not in ("kind", "levels"):
                raise ConfigError(f"encoder.{key}", "unknown key (allowed: kind, levels)")
        if e.get("kind", "hat") not in ENCODER_KINDS:
            raise bad_value("encoder.kind", f"expected one of {list(ENCODER_KINDS)}", e["kind"])
        levels = e.get("levels", 32)
        if not _is_int(levels) or not 2 <= levels <= 10_000:
            raise bad_value("encoder.levels", "expected an integer in [2, 10000]", levels)

    def validate(self, prefix: str = "network") -> None:
        """Check every key again (after changing fields); a ConfigError names the first
        bad one under `prefix`."""
        try:
            type(self).model_validate(self.model_dump())
        except ValidationError as exc:
            raise _unwrap(exc, prefix) from None

    @classmethod
    def from_dict(cls, table: Mapping, *, prefix: str = "network", **overrides) -> MLPConfig:
        """Config from a (TOML) table; unknown keys and bad values raise ConfigError."""
        if not isinstance(table, Mapping):
            raise ConfigError(prefix, f"expected a table, got {table!r}")
        values = {**table, **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise _unwrap(exc, prefix) from None

    def with_data(self, **values: Any) -> MLPConfig:
        """A copy with the fields the data fix (in_dim, out_dim, bounds, ...) set, checked."""
        return type(self).from_dict({**self.model_dump(), **values})

    def to_dict(self) -> dict:
        """Plain dict (TOML-serialisable except None values, which are dropped)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def _unwrap(exc: ValidationError, prefix: str = "network") -> ConfigError:
    """The ConfigError of a pydantic error (raised by the checks above) under `prefix`."""
    return ConfigError.from_validation(exc, prefix)


__all__ = ["NEURON_KINDS", "ConfigError", "MLPConfig"]
