"""Coordinate networks coords → field with VSN, LIF or ANN hidden layers.

Layout of :class:`MLP` (one builder for the spiking network and its equal-shape ANN):

    x ─ box normalisation [lo, hi] → [-1, 1] ─ (Fourier features) ─ Linear ─ unit ─ … ─
      Linear ─ output scaling (y · scale + shift) → field (out_dim components)

where "unit" is a :class:`~spiking.neurons.VSN` or :class:`~spiking.neurons.LIF`
layer (input current repeated for T_s steps, output averaged over steps) or an ANN
activation. :func:`build_mlp` takes keywords, :func:`mlp_from_config` a TOML table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from .activations import ACTIVATIONS, get_activation
from .neurons import LIF, RESET_MODES, VSN
from .surrogate import DEFAULT_SLOPE, SURROGATE_KINDS, Surrogate

NEURON_KINDS = ("vsn", "lif", "ann")


class SpikingConfigError(ValueError):
    """A network/neuron configuration value is invalid (message names key and value)."""


class BoxNormalisation(nn.Module):
    """Affine map of the bounding box [lo, hi] onto [-1, 1]^d."""

    def __init__(self, lo: Sequence[float], hi: Sequence[float], dtype=None) -> None:
        super().__init__()
        dtype = dtype or torch.get_default_dtype()
        lo_t = torch.as_tensor(lo, dtype=dtype).reshape(-1)
        hi_t = torch.as_tensor(hi, dtype=dtype).reshape(-1)
        self.register_buffer("lo", lo_t)
        self.register_buffer("hi", hi_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map x (…, d) from the box to [-1, 1]^d."""
        return 2.0 * (x - self.lo) / (self.hi - self.lo) - 1.0


class FourierFeatures(nn.Module):
    """Random Fourier features γ(x) = [sin(2πBx), cos(2πBx)] (Tancik et al., NeurIPS 2020).

    B (m × d) has i.i.d. N(0, σ²) entries; fixed (buffer) or learnable. With
    ``keep_input`` the raw input is prepended: [x, sin, cos].
    """

    def __init__(
        self,
        in_dim: int,
        num_features: int,
        scale: float = 1.0,
        *,
        learnable: bool = False,
        keep_input: bool = False,
        generator: torch.Generator | None = None,
        dtype=None,
    ) -> None:
        super().__init__()
        dtype = dtype or torch.get_default_dtype()
        B = torch.randn(num_features, in_dim, generator=generator, dtype=torch.float64) * scale
        B = B.to(dtype)
        if learnable:
            self.B = nn.Parameter(B)
        else:
            self.register_buffer("B", B)
        self.in_dim = in_dim
        self.keep_input = keep_input

    @property
    def out_dim(self) -> int:
        """Number of features produced."""
        return 2 * self.B.shape[0] + (self.in_dim if self.keep_input else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of x (…, d) → (…, out_dim)."""
        proj = 2.0 * math.pi * x @ self.B.T
        parts = [x] if self.keep_input else []
        return torch.cat(parts + [torch.sin(proj), torch.cos(proj)], dim=-1)


class Activation(nn.Module):
    """An ANN activation layer by name (the non-spiking hidden unit)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = get_activation(name, who="activation")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x)."""
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "network") -> None:
        """Raise SpikingConfigError naming the first bad key and its value."""

        def bad(key: str, msg: str) -> SpikingConfigError:
            return SpikingConfigError(f"{prefix}.{key} = {getattr(self, key)!r}: {msg}")

        def pos_int(key: str, allow_zero: bool = False) -> None:
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
                raise bad(key, "expected a " + ("non-negative" if allow_zero else "positive")
                          + " integer")

        def number(key: str, lo: float = -math.inf, hi: float = math.inf) -> None:
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (lo <= v <= hi):
                raise bad(key, f"expected a number in [{lo:g}, {hi:g}]")

        def flag(key: str) -> None:
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "expected true or false")

        def choice(key: str, options: Sequence[str]) -> None:
            if getattr(self, key) not in options:
                raise bad(key, f"expected one of {list(options)}")

        pos_int("in_dim")
        pos_int("out_dim")
        if isinstance(self.hidden, int | str) or not isinstance(self.hidden, Sequence):
            raise bad("hidden", "expected a list of layer widths, e.g. [64, 64]")
        if len(self.hidden) == 0 or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden
        ):
            raise bad("hidden", "expected a non-empty list of positive integers")
        self.hidden = list(self.hidden)
        choice("neuron", NEURON_KINDS)
        choice("activation", sorted(ACTIVATIONS))
        if self.neuron == "vsn":
            try:
                get_activation(self.activation, zero_at_zero=True, who="VSN activation")
            except ValueError as err:
                raise bad("activation", str(err)) from None
        pos_int("num_steps")
        number("beta", 0.0, 1.0)
        number("threshold")
        flag("learn_beta")
        flag("learn_threshold")
        flag("detach_reset")
        choice("surrogate", SURROGATE_KINDS)
        if self.slope is not None:
            number("slope", 0.0)
            if self.slope == 0:
                raise bad("slope", "expected a positive number")
        choice("reset", RESET_MODES)
        if self.bounds is not None:
            b = self.bounds
            ok = (isinstance(b, Sequence) and len(b) == 2
                  and all(isinstance(r, Sequence) and len(r) == self.in_dim for r in b))
            if not ok:
                raise bad("bounds", f"expected [lo, hi], each a list of {self.in_dim} numbers")
            try:
                lo = [float(v) for v in b[0]]
                hi = [float(v) for v in b[1]]
            except (TypeError, ValueError):
                raise bad("bounds", "expected numbers") from None
            pairs = zip(lo, hi, strict=True)
            if not all(math.isfinite(a) and math.isfinite(c) and c > a for a, c in pairs):
                raise bad("bounds", "need finite lo < hi in every coordinate")
            self.bounds = [lo, hi]
        pos_int("fourier_features", allow_zero=True)
        number("fourier_scale", 0.0)
        flag("fourier_learnable")
        flag("fourier_keep_input")
        for key in ("output_scale", "output_shift"):
            v = getattr(self, key)
            vals = v if isinstance(v, Sequence) and not isinstance(v, str) else [v]
            if (len(vals) not in (1, self.out_dim)
                    or any(isinstance(a, bool) or not isinstance(a, int | float)
                           or not math.isfinite(a) for a in vals)):
                raise bad(key, f"expected a number or a list of {self.out_dim} numbers")
            if key == "output_scale" and any(a == 0 for a in vals):
                raise bad(key, "scale must be nonzero")
        if self.seed is not None:
            pos_int("seed", allow_zero=True)

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


class MLP(nn.Module):
    """Coordinate MLP coords (N, in_dim) → field (N, out_dim); see the module docstring."""

    def __init__(self, config: MLPConfig, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        dtype = dtype or torch.get_default_dtype()
        gen = None
        if config.seed is not None:
            gen = torch.Generator().manual_seed(config.seed)

        self.normalise = (
            BoxNormalisation(*config.bounds, dtype=dtype) if config.bounds is not None else None
        )
        width = config.in_dim
        self.fourier = None
        if config.fourier_features > 0:
            self.fourier = FourierFeatures(
                config.in_dim, config.fourier_features, config.fourier_scale,
                learnable=config.fourier_learnable, keep_input=config.fourier_keep_input,
                generator=gen, dtype=dtype,
            )
            width = self.fourier.out_dim

        self.linears = nn.ModuleList()
        self.units = nn.ModuleList()
        for h in config.hidden:
            self.linears.append(_xavier_linear(width, h, gen, dtype))
            self.units.append(_hidden_unit(config, h, dtype))
            width = h
        self.linears.append(_xavier_linear(width, config.out_dim, gen, dtype))
        scale = torch.as_tensor(config.output_scale, dtype=dtype).reshape(-1)
        shift = torch.as_tensor(config.output_shift, dtype=dtype).reshape(-1)
        self.register_buffer("output_scale", scale)
        self.register_buffer("output_shift", shift)

    @property
    def neuron(self) -> str:
        """Hidden-unit kind: 'vsn', 'lif' or 'ann'."""
        return self.config.neuron

    @property
    def widths(self) -> list[int]:
        """Feature width entering the first Linear, hidden widths, out_dim."""
        return [self.linears[0].in_features] + [lin.out_features for lin in self.linears]

    @property
    def num_steps(self) -> int:
        """Time steps T_s of the spiking layers (1 for an ANN)."""
        return self.config.num_steps if self.neuron != "ann" else 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (and Fourier-mapped) input that enters the first Linear layer."""
        return input_features(x, self.normalise, self.fourier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Field values at coordinates x (…, in_dim) → (…, out_dim)."""
        h = self.features(x)
        for lin, unit in zip(self.linears, self.units, strict=False):
            h = unit(lin(h))
        return self.linears[-1](h) * self.output_scale + self.output_shift


def input_features(x: torch.Tensor, normalise: nn.Module | None,
                   fourier: nn.Module | None) -> torch.Tensor:
    """The input map shared by MLP and its converted SNN: box normalisation, Fourier features."""
    if normalise is not None:
        x = normalise(x)
    if fourier is not None:
        x = fourier(x)
    return x


def _xavier_linear(n_in: int, n_out: int, gen, dtype) -> nn.Linear:
    """Linear layer with Glorot-uniform weights and zero bias (Glorot & Bengio 2010)."""
    lin = nn.Linear(n_in, n_out, dtype=dtype)
    bound = math.sqrt(6.0 / (n_in + n_out))
    with torch.no_grad():
        w = torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 * bound - bound
        lin.weight.copy_(w.to(dtype))
        lin.bias.zero_()
    return lin


def _hidden_unit(cfg: MLPConfig, n: int, dtype) -> nn.Module:
    if cfg.neuron == "ann":
        return Activation(cfg.activation)
    common = dict(
        num_steps=cfg.num_steps, beta=cfg.beta, threshold=cfg.threshold,
        learn_beta=cfg.learn_beta, learn_threshold=cfg.learn_threshold,
        surrogate=Surrogate(cfg.surrogate, cfg.slope), detach_reset=cfg.detach_reset,
        dtype=dtype,
    )
    if cfg.neuron == "vsn":
        return VSN(n, activation=cfg.activation, **common)
    return LIF(n, reset=cfg.reset, **common)


def build_mlp(
    in_dim: int,
    out_dim: int = 1,
    hidden: Sequence[int] = (64, 64),
    *,
    neuron: str = "vsn",
    dtype: torch.dtype | None = None,
    **options,
) -> MLP:
    """Coordinate network with VSN / LIF / ANN hidden layers (options: MLPConfig fields)."""
    cfg = MLPConfig.from_dict(
        {"in_dim": in_dim, "out_dim": out_dim, "hidden": list(hidden), "neuron": neuron,
         **options},
        prefix="build_mlp",
    )
    return MLP(cfg, dtype=dtype)


def mlp_from_config(
    table: Mapping,
    *,
    in_dim: int | None = None,
    bounds: Sequence[Sequence[float]] | None = None,
    prefix: str = "network",
    dtype: torch.dtype | None = None,
) -> MLP:
    """Network from a ``[network]`` TOML table; ``in_dim``/``bounds`` come from the mesh."""
    if bounds is not None:
        bounds = [[float(v) for v in bounds[0]], [float(v) for v in bounds[1]]]
    if isinstance(table, Mapping) and in_dim is not None and table.get("in_dim", in_dim) != in_dim:
        raise SpikingConfigError(
            f"{prefix}.in_dim = {table['in_dim']!r}: the data have {in_dim} coordinates"
        )
    cfg = MLPConfig.from_dict(table, prefix=prefix, in_dim=in_dim, bounds=bounds)
    return MLP(cfg, dtype=dtype)


def equal_shape_ann(net: MLP, activation: str | None = None) -> MLP:
    """ANN with the same widths, input map (incl. Fourier B) and output scaling as ``net``.

    The activation defaults to the VSN's φ (``identity`` is replaced by ``tanh``, since
    a linear ANN would be no comparison); the weights are freshly initialised.
    """
    act = activation or net.config.activation
    if activation is None and act == "identity":
        act = "tanh"
    cfg = MLPConfig.from_dict({**asdict(net.config), "neuron": "ann", "activation": act})
    dtype = net.linears[0].weight.dtype
    ann = MLP(cfg, dtype=dtype)
    if net.fourier is not None:
        with torch.no_grad():
            ann.fourier.B.copy_(net.fourier.B)
    return ann


__all__ = [
    "DEFAULT_SLOPE",
    "NEURON_KINDS",
    "MLP",
    "MLPConfig",
    "SpikingConfigError",
    "BoxNormalisation",
    "FourierFeatures",
    "Activation",
    "build_mlp",
    "mlp_from_config",
    "equal_shape_ann",
]
