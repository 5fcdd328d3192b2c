"""Hyper-parameters of a coordinate network: :class:`MLPConfig`, the ``[network]`` table.

Every key is checked on construction, and the first bad one raises
:class:`SpikingConfigError` naming it with its value, so a TOML typo never becomes a
traceback deep inside torch:

>>> MLPConfig(hidden=[32, 32], neuron="lif").num_steps
2
>>> MLPConfig(neuron="gru")
Traceback (most recent call last):
    ...
spiking.errors.SpikingConfigError: network.neuron = 'gru': expected one of ['vsn', 'lif', 'ann']
>>> MLPConfig.from_dict({"hidden": [8], "seed": -1}, prefix="net")
Traceback (most recent call last):
    ...
spiking.errors.SpikingConfigError: net.seed = -1: expected a non-negative integer

:class:`~spiking.networks.MLP` builds the network of a config (``MLP.from_config``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

from .activations import ACTIVATIONS, get_activation
from .errors import SpikingConfigError
from .neurons import RESET_MODES
from .surrogate import SURROGATE_KINDS

NEURON_KINDS = ("vsn", "lif", "ann")



class _Checks:
    """Type/range checks of one config's keys; each raises SpikingConfigError on failure."""

    def __init__(self, cfg: MLPConfig, prefix: str) -> None:
        self.cfg, self.prefix = cfg, prefix

    def bad(self, key: str, msg: str) -> SpikingConfigError:
        """The error for ``key`` (its value quoted) with the explanation ``msg``."""
        return SpikingConfigError(f"{self.prefix}.{key} = {getattr(self.cfg, key)!r}: {msg}")

    def pos_int(self, key: str, allow_zero: bool = False) -> None:
        """A positive (or non-negative) integer, not a bool."""
        v = getattr(self.cfg, key)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
            raise self.bad(key, "expected a " + ("non-negative" if allow_zero else "positive")
                           + " integer")

    def number(self, key: str, lo: float = -math.inf, hi: float = math.inf) -> None:
        """A number (not a bool) in [lo, hi]."""
        v = getattr(self.cfg, key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not (lo <= v <= hi):
            raise self.bad(key, f"expected a number in [{lo:g}, {hi:g}]")

    def flag(self, key: str) -> None:
        """true or false."""
        if not isinstance(getattr(self.cfg, key), bool):
            raise self.bad(key, "expected true or false")

    def choice(self, key: str, options: Sequence[str]) -> None:
        """One of ``options``."""
        if getattr(self.cfg, key) not in options:
            raise self.bad(key, f"expected one of {list(options)}")


@dataclass
class MLPConfig:
    """Validated hyper-parameters of :class:`MLP` (keys of the ``[network]`` TOML table)."""

    in_dim: int = 2
    out_dim: int = 1
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    neuron: str = "vsn"
    # Defaults = the configuration tests/spiking/test_training.py shows fitting a 2D field
    # to < 2 % with ~50 % activity.
    activation: str = "tanh"
    num_steps: int = 2
    beta: float = 1.0
    threshold: float = 0.02
    learn_beta: bool = False
    learn_threshold: bool = False
    surrogate: str = "arctan"
    slope: float | None = None
    reset: str = "subtract"
    detach_reset: bool = True
    bounds: list[list[float]] | None = None
    fourier_features: int = 0
    fourier_scale: float = 1.0
    fourier_learnable: bool = False
    fourier_keep_input: bool = False
    output_scale: float | list[float] = 1.0
    output_shift: float | list[float] = 0.0
    seed: int | None = None
    encoder: dict | None = None  # {kind = "hat" | "onehot", levels}: spiking input encoder

    def __post_init__(self) -> None:
        self.validate()
    def validate(self, prefix: str = "network") -> None:
        """Raise SpikingConfigError naming the first bad key and its value."""
        c = _Checks(self, prefix)
        self._validate_shape(c)
        self._validate_neuron(c)
        self._validate_bounds(c)
        c.pos_int("fourier_features", allow_zero=True)
        c.number("fourier_scale", 0.0)
        c.flag("fourier_learnable")
        c.flag("fourier_keep_input")
        self._validate_output(c)
        if self.seed is not None:
            c.pos_int("seed", allow_zero=True)
        if self.encoder is not None and not isinstance(self.encoder, dict):
            raise SpikingConfigError(f"{prefix}.encoder = {self.encoder!r}: expected a table "
                                     "{kind, levels}")

    def _validate_shape(self, c: _Checks) -> None:
        """in_dim, out_dim and the hidden widths (normalised to a list)."""
        c.pos_int("in_dim")
        c.pos_int("out_dim")
        if isinstance(self.hidden, int | str) or not isinstance(self.hidden, Sequence):
            raise c.bad("hidden", "expected a list of layer widths, e.g. [64, 64]")
        if len(self.hidden) == 0 or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden
        ):
            raise c.bad("hidden", "expected a non-empty list of positive integers")
        self.hidden = list(self.hidden)

    def _validate_neuron(self, c: _Checks) -> None:
        """The hidden-unit kind and its neuron parameters."""
        c.choice("neuron", NEURON_KINDS)
        c.choice("activation", sorted(ACTIVATIONS))
        if self.neuron == "vsn":
            try:
                get_activation(self.activation, zero_at_zero=True, who="VSN activation")
            except ValueError as err:
                raise c.bad("activation", str(err)) from None
        c.pos_int("num_steps")
        c.number("beta", 0.0, 1.0)
        c.number("threshold")
        c.flag("learn_beta")
        c.flag("learn_threshold")
        c.flag("detach_reset")
        c.choice("surrogate", SURROGATE_KINDS)
        if self.slope is not None:
            c.number("slope", 0.0)
            if self.slope == 0:
                raise c.bad("slope", "expected a positive number")
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
        try:
            lo = [float(v) for v in b[0]]
            hi = [float(v) for v in b[1]]
        except (TypeError, ValueError):
            raise c.bad("bounds", "expected numbers") from None
        pairs = zip(lo, hi, strict=True)
        if not all(math.isfinite(a) and math.isfinite(h) and h > a for a, h in pairs):
            raise c.bad("bounds", "need finite lo < hi in every coordinate")
        self.bounds = [lo, hi]

    def _validate_output(self, c: _Checks) -> None:
        """output_scale (nonzero) and output_shift: a number or one per output component."""
        for key in ("output_scale", "output_shift"):
            v = getattr(self, key)
            vals = v if isinstance(v, Sequence) and not isinstance(v, str) else [v]
            if (len(vals) not in (1, self.out_dim)
                    or any(isinstance(a, bool) or not isinstance(a, int | float)
                           or not math.isfinite(a) for a in vals)):
                raise c.bad(key, f"expected a number or a list of {self.out_dim} numbers")
            if key == "output_scale" and any(a == 0 for a in vals):
                raise c.bad(key, "scale must be nonzero")

    @classmethod
    def from_dict(cls, table: Mapping, *, prefix: str = "network", **overrides) -> MLPConfig:
        """Config from a (TOML) table; unknown keys and bad values raise SpikingConfigError."""
        if not isinstance(table, Mapping):
            raise SpikingConfigError(f"{prefix}: expected a table, got {table!r}")
        known = {f.name for f in fields(cls)}
        for key in table:
            if key not in known:
                raise SpikingConfigError(
                    f"{prefix}.{key}: unknown key; known keys: {', '.join(sorted(known))}"
                )
        values = {**table, **{k: v for k, v in overrides.items() if v is not None}}
        cfg = cls.__new__(cls)
        for f in fields(cls):
            if f.name in values:
                setattr(cfg, f.name, values[f.name])
            else:
                default = f.default_factory() if callable(f.default_factory) else f.default
                setattr(cfg, f.name, default)
        cfg.validate(prefix)
        return cfg

    def to_dict(self) -> dict:
        """Plain dict (TOML-serialisable except None values, which are dropped)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


__all__ = ["NEURON_KINDS", "MLPConfig", "SpikingConfigError"]
