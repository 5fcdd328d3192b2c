"""Named activation functions φ shared by VSN neurons and ANN layers."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]


# Module-level functions (not lambdas) so modules holding them stay picklable.
def identity(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = x."""
    return x


ACTIVATIONS: dict[str, Activation] = {
    "identity": identity,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sin": torch.sin,
    "silu": F.silu,
    "gelu": F.gelu,
    "elu": F.elu,
    "softsign": F.softsign,
    "sigmoid": torch.sigmoid,
    "softplus": F.softplus,
}


def get_activation(
    spec: str | Activation, *, zero_at_zero: bool = False, who: str = "activation"
) -> Activation:
    """Activation by name (or a callable); with ``zero_at_zero`` refuse one with φ(0) ≠ 0."""
    if isinstance(spec, str):
        if spec not in ACTIVATIONS:
            raise ValueError(
                f"{who}: unknown activation {spec!r}; choose one of {sorted(ACTIVATIONS)}"
            )
        fn = ACTIVATIONS[spec]
    elif callable(spec):
        fn = spec
    else:
        raise ValueError(f"{who}: expected an activation name or callable, got {spec!r}")
    if zero_at_zero:
        at_zero = float(fn(torch.zeros(1, dtype=torch.float64))[0])
        if at_zero != 0.0:
            raise ValueError(
                f"{who}: {spec!r} has φ(0) = {at_zero:g}; a VSN needs φ(0) = 0 so that "
                "a silent neuron outputs exactly 0"
            )
    return fn


def activation_name(fn: Activation) -> str:
    """Registered name of ``fn``, or its repr when it is a custom callable."""
    for name, f in ACTIVATIONS.items():
        if f is fn:
            return name
    return getattr(fn, "__name__", repr(fn))
