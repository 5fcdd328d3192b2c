"""Coordinate networks coords → field with VSN, LIF or ANN hidden layers.

Layout of :class:`MLP` (one builder for the spiking network and its equal-shape ANN):

    x ─ box normalisation [lo, hi] → [-1, 1] ─ (Fourier features) ─ Linear ─ unit ─ … ─
      Linear ─ output scaling (y · scale + shift) → field (out_dim components)

where "unit" is a :class:`~spiking.neurons.VSN` or :class:`~spiking.neurons.LIF`
layer (input current repeated for T_s steps, output averaged over steps) or an ANN
activation. :func:`build_mlp` takes keywords, :func:`mlp_from_config` a TOML table; their
hyper-parameters are a :class:`~spiking.config.MLPConfig` (re-exported here):

>>> net = build_mlp(2, 1, [16, 16], neuron="lif", num_steps=4, seed=0)
>>> net.widths, net.neuron, net.num_steps
([2, 16, 16, 1], 'lif', 4)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral

import torch
from torch import nn

from .activations import get_activation
from .config import NEURON_KINDS, MLPConfig
from .encoders import PopulationEncoder
from .errors import bad_value
from .neurons import LIF, VSN
from .surrogate import DEFAULT_SLOPE, Surrogate


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

def _check_widths(in_dim, widths, out_dim) -> None:
    """Refuse widths a network cannot have (ValueError naming the argument)."""
    for name, value in (("in_dim", in_dim), ("out_dim", out_dim)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
            raise ValueError(f"MLP {name} = {value!r}: expected a positive integer")
    if isinstance(widths, str | bytes) or not hasattr(widths, "__iter__"):
        raise ValueError(f"MLP widths = {widths!r}: expected a list of positive integers")
    for i, h in enumerate(widths):
        if isinstance(h, bool) or not isinstance(h, Integral) or h < 1:
            raise ValueError(f"MLP widths[{i}] = {h!r}: expected a positive integer "
                             "(a layer of zero units carries nothing)")


class MLP(nn.Module):
    """Coordinate MLP coords (N, in_dim) → field (N, out_dim), composed from hidden units.

    >>> net = MLP(2, [32, 32], unit=lambda n: VSN(n, threshold=0.02), seed=0)
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 1])

    ``unit(n)`` builds the hidden unit of a layer of width n: a spiking neuron
    (:class:`~spiking.neurons.VSN`, :class:`~spiking.neurons.LIF`, ...) or an ANN
    :class:`Activation` (the default, tanh). ``bounds = (lo, hi)`` maps the input box onto
    [-1, 1]^d; left None, :func:`coupling.fit` sets it from the mesh before training.
    ``fourier`` is a number of random Fourier features (or a :class:`FourierFeatures`).
    ``encoder`` (a :class:`~spiking.encoders.PopulationEncoder` of the features) feeds the
    first hidden layer events instead of dense values.
    """

    def __init__(self, in_dim: int, widths: Sequence[int], *, out_dim: int = 1,
                 unit: Callable[[int], nn.Module] | None = None,
                 bounds: Sequence[Sequence[float]] | None = None,
                 fourier: int | FourierFeatures = 0, fourier_scale: float = 1.0,
                 output_scale: float | Sequence[float] = 1.0,
                 output_shift: float | Sequence[float] = 0.0,
                 seed: int | torch.Generator | None = None,
                 dtype: torch.dtype | None = None, encoder: nn.Module | None = None) -> None:
        super().__init__()
        dtype = dtype or torch.get_default_dtype()
        gen = (seed if isinstance(seed, torch.Generator) or seed is None
               else torch.Generator().manual_seed(seed))
        unit = unit or (lambda n: Activation("tanh"))
        _check_widths(in_dim, widths, out_dim)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.normalise = BoxNormalisation(*bounds, dtype=dtype) if bounds is not None else None
        if isinstance(fourier, int) and fourier > 0:
            fourier = FourierFeatures(in_dim, fourier, fourier_scale, generator=gen, dtype=dtype)
        self.fourier = fourier or None
        width = self.fourier.out_dim if self.fourier is not None else in_dim
        self.encoder = encoder  # events instead of dense values (spiking.encoders)
        if encoder is not None:
            if encoder.in_dim != width:
                raise ValueError(f"encoder.in_dim = {encoder.in_dim}: the network's input "
                                 f"features are {width} wide")
            width = encoder.out_dim
        self.linears, self.units = nn.ModuleList(), nn.ModuleList()
        for h in widths:
            self.linears.append(_xavier_linear(width, h, gen, dtype))
            self.units.append(unit(h))
            width = h
        self.linears.append(_xavier_linear(width, out_dim, gen, dtype))
        self.register_buffer("output_scale", torch.as_tensor(output_scale, dtype=dtype).reshape(-1))
        self.register_buffer("output_shift", torch.as_tensor(output_shift, dtype=dtype).reshape(-1))

    @classmethod
    def from_config(cls, config: MLPConfig, dtype: torch.dtype | None = None) -> MLP:
        """The network of a validated :class:`MLPConfig` (a ``[network]`` table)."""
        config.validate()
        if config.output_scale == "auto":
            raise bad_value("network.output_scale", "'auto' is chosen from the problem: "
                            "neurofem train does it; in Python pass "
                            "coupling.auto_output_scale(disc)", "auto")
        gen = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
        fourier = 0
        if config.fourier_features > 0:
            fourier = FourierFeatures(
                config.in_dim, config.fourier_features, config.fourier_scale,
                learnable=config.fourier_learnable, keep_input=config.fourier_keep_input,
                generator=gen, dtype=dtype)
        net = cls(config.in_dim, config.hidden, out_dim=config.out_dim,
                  unit=lambda n: hidden_unit(config, n, dtype), bounds=config.bounds,
                  fourier=fourier, output_scale=config.output_scale,
                  output_shift=config.output_shift, dtype=dtype, seed=gen,
                  encoder=_encoder(config))
        net.config = config
        return net

    def set_input_box(self, lo: Sequence[float], hi: Sequence[float]) -> None:
        """Normalise inputs from the box [lo, hi] (replaces any earlier box)."""
        self.normalise = BoxNormalisation(lo, hi, dtype=self.linears[0].weight.dtype)

    @property
    def neuron(self) -> str:
        """Hidden-unit kind, read from the units themselves: 'vsn', 'lif', 'if' or 'ann'."""
        unit = self.units[0] if len(self.units) else None
        return type(unit).__name__.lower() if hasattr(unit, "graded") else "ann"

    @property
    def widths(self) -> list[int]:
        """Feature width entering the first Linear, hidden widths, out_dim."""
        return [self.linears[0].in_features] + [lin.out_features for lin in self.linears]

    @property
    def num_steps(self) -> int:
        """Time steps T_s of the spiking layers (1 for an ANN)."""
        return getattr(self.units[0], "num_steps", 1) if len(self.units) else 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (and Fourier-mapped, encoded) input that enters the first Linear."""
        h = input_features(x, self.normalise, self.fourier)
        return h if self.encoder is None else self.encoder(h)

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


def _encoder(cfg: MLPConfig) -> nn.Module | None:
    """The config's ``encoder = {kind, levels}`` table as an encoder (None: dense input)."""
    table = cfg.encoder
    if not table:
        return None

    width = 2 * cfg.fourier_features + (cfg.in_dim if cfg.fourier_keep_input else 0)
    try:
        return PopulationEncoder.from_dict(dict(table), width if cfg.fourier_features
                                           else cfg.in_dim)
    except ValueError as err:
        raise bad_value("network.encoder", str(err), cfg.encoder) from None


def _xavier_linear(n_in: int, n_out: int, gen, dtype) -> nn.Linear:
    """Linear layer with Glorot-uniform weights and zero bias (Glorot & Bengio 2010)."""
    lin = nn.Linear(n_in, n_out, dtype=dtype)
    bound = math.sqrt(6.0 / (n_in + n_out))
    with torch.no_grad():
        w = torch.rand(n_out, n_in, generator=gen, dtype=torch.float64) * 2 * bound - bound
        lin.weight.copy_(w.to(dtype))
        lin.bias.zero_()
    return lin


def hidden_unit(cfg: MLPConfig, n: int, dtype) -> nn.Module:
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
    return MLP.from_config(cfg, dtype=dtype)


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
        raise bad_value("in_dim", f"the data have {in_dim} coordinates",
                        table["in_dim"]).under(prefix)
    cfg = MLPConfig.from_dict(table, prefix=prefix, in_dim=in_dim, bounds=bounds)
    return MLP.from_config(cfg, dtype=dtype)


def equal_shape_ann(net: MLP, activation: str | None = None) -> MLP:
    """ANN with the same widths, input map (incl. Fourier B) and output scaling as ``net``.

    A spiking input encoder is not copied: the ANN takes the dense features it encodes.

    The activation defaults to the VSN's φ (``identity`` is replaced by ``tanh``, since
    a linear ANN would be no comparison); the weights are freshly initialised.
    """
    act = activation or getattr(getattr(net, "config", None), "activation", "tanh")
    if activation is None and act == "identity":
        act = "tanh"
    dtype = net.linears[0].weight.dtype
    if hasattr(net, "config"):
        table = {**net.config.model_dump(), "neuron": "ann", "activation": act}
        table.pop("encoder", None)  # the equal ANN takes the dense features
        cfg = MLPConfig.from_dict(table)
        ann = MLP.from_config(cfg, dtype=dtype)
    else:
        box = (net.normalise.lo.tolist(), net.normalise.hi.tolist()) if net.normalise else None
        ann = MLP(net.in_dim, net.widths[1:-1], out_dim=net.out_dim,
                  unit=lambda n: Activation(act), bounds=box,
                  fourier=copy.deepcopy(net.fourier) if net.fourier is not None else 0,
                  output_scale=net.output_scale.tolist(), output_shift=net.output_shift.tolist(),
                  dtype=dtype)
    if net.fourier is not None:
        with torch.no_grad():
            ann.fourier.B.copy_(net.fourier.B)
    return ann


__all__ = [
    "DEFAULT_SLOPE",
    "NEURON_KINDS",
    "MLP",
    "MLPConfig",
    "BoxNormalisation",
    "FourierFeatures",
    "Activation",
    "build_mlp",
    "mlp_from_config",
    "equal_shape_ann",
]
