"""A microstructure bank: many random RVEs of one kind, training and held-out, from one spec.

A :class:`BankSpec` (the ``[bank]`` table) draws each member's volume fraction uniformly
in ``volume_fraction = [lo, hi]``, its number of equal inclusions uniformly in
``n = [lo, hi]`` (the radius follows from both) and its packing seed. Training member
``i`` draws from ``default_rng([seed, 0, i])``, held-out member ``j`` from
``default_rng([seed, 1, j])``: the two sets are separate streams, and a packing seed
already used is drawn again, so no two members share one. A member is the keyword
arguments of :func:`meshes.build` (``kind``, ``size`` and the kind's options):

>>> train, held = bank_members(parse_bank({"kind": "rve2d", "count": 2, "held_out": 1}))
>>> len(train), len(held), train[0]["kind"]
(2, 1, 'rve2d')
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from neurofem_errors import ConfigError

from .errors import MeshError
from .packing import RSA_LIMIT

if TYPE_CHECKING:
    from meshes.fenics import MPI

    from .api import MeshCache
    from .core import DistributedMesh

VF_MAX = 0.6  # no bank asks for more: beyond every RSA jamming limit
N_MAX = 1000  # what the RVE builders accept
SEED_MAX = 2**32 - 1  # what numpy's seed accepts
_SHAPE = {"rve": "sphere", "rve2d": "fibre"}  # the inclusion each kind packs (by default)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < float("inf")


def _pair(v: Any, ok, what: str) -> tuple:
    """One value or ``[lo, hi]`` as (lo, hi), each accepted by `ok`; lo <= hi."""
    lo_hi = [v, v] if ok(v) else v
    if not (isinstance(lo_hi, list | tuple) and len(lo_hi) == 2 and all(map(ok, lo_hi))):
        raise ValueError(f"expected {what} or [lo, hi] of them, got {v!r}")
    if lo_hi[0] > lo_hi[1]:
        raise ValueError(f"expected lo <= hi, got {list(lo_hi)!r}")
    return tuple(lo_hi)


class BankSpec(BaseModel):
    """The ``[bank]`` table: how many microstructures of which kind, and their ranges."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: Literal["rve", "rve2d"] = "rve"
    count: int = Field(ge=1, le=100_000)
    held_out: int = Field(20, ge=0, le=100_000)
    volume_fraction: tuple[float, float] = (0.1, 0.25)
    n: tuple[int, int] = (8, 8)
    size: float | None = Field(None, gt=0, allow_inf_nan=False)
    interface_size: float | None = Field(None, gt=0, allow_inf_nan=False)
    gap: float = Field(0.02, ge=0, allow_inf_nan=False)
    placement: Literal["inside", "cut"] = "inside"
    seed: int = Field(0, ge=0, le=SEED_MAX)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        for name in data if isinstance(data, dict) else ():
            if name not in cls.model_fields:  # name the allowed keys, as every table does
                allowed = ", ".join(cls.model_fields)
                raise ConfigError(str(name), f"unknown key (allowed: {allowed})")
        return data

    @field_validator("volume_fraction", mode="before")
    @classmethod
    def _fraction_range(cls, v: Any) -> tuple[float, float]:
        lo, hi = _pair(v, _is_number, "a number")
        if not 0 < lo <= hi < VF_MAX:
            raise ValueError(f"expected 0 < lo <= hi < {VF_MAX}, got {[lo, hi]!r}")
        return float(lo), float(hi)

    @field_validator("n", mode="before")
    @classmethod
    def _count_range(cls, v: Any) -> tuple[int, int]:
        lo, hi = _pair(v, _is_int, "an integer")
        if not 1 <= lo <= hi <= N_MAX:
            raise ValueError(f"expected 1 <= lo <= hi <= {N_MAX}, got {[lo, hi]!r}")
        return lo, hi

    @model_validator(mode="after")
    def _reachable(self) -> BankSpec:
        shape = _SHAPE[self.kind]
        if self.volume_fraction[1] > RSA_LIMIT[shape]:  # the packing would jam: refuse now
            raise ConfigError("volume_fraction", f"{list(self.volume_fraction)!r}: above "
                              f"{RSA_LIMIT[shape]}, what random sequential addition of "
                              f"{shape}s reaches ({self.kind})")
        return self


def parse_bank(table: Any, where: str = "bank") -> BankSpec:
    """The ``[bank]`` table `table` validated; a bad value is one ConfigError naming its key."""
    if not isinstance(table, dict):
        raise ConfigError(where, f"expected a table, got {table!r}")
    try:
        return BankSpec.model_validate(table)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, where) from None


def _member(spec: BankSpec, rng: np.random.Generator, used: set[int]) -> dict[str, Any]:
    """One member's build arguments, drawn from `rng`; its packing seed is not in `used`."""
    vf = float(rng.uniform(*spec.volume_fraction))
    n = int(rng.integers(spec.n[0], spec.n[1] + 1))
    seed = int(rng.integers(0, SEED_MAX + 1))
    while seed in used:  # rare; keeps every member's packing distinct
        seed = int(rng.integers(0, SEED_MAX + 1))
    used.add(seed)
    member = {"kind": spec.kind, "size": spec.size, "volume_fraction": vf, "n": n,
              "gap": spec.gap, "placement": spec.placement, "seed": seed}
    if spec.interface_size is not None:
        member["interface_size"] = spec.interface_size
    return member


def bank_members(spec: BankSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training, held-out) members: keyword arguments of ``meshes.build`` (kind, size, ...)."""
    used: set[int] = set()
    train = [_member(spec, np.random.default_rng([spec.seed, 0, i]), used)
             for i in range(spec.count)]
    held = [_member(spec, np.random.default_rng([spec.seed, 1, j]), used)
            for j in range(spec.held_out)]
    return train, held


def build_bank(members: list[dict[str, Any]], comm: MPI.Comm,
               cache: MeshCache | None = None) -> list[DistributedMesh]:
    """Every member built with ``meshes.build`` over `comm` (through `cache`), in order.

    A member that cannot be built (its inclusions do not pack, its size is refused) is one
    MeshError naming its index and its options."""
    from .api import build  # deferred: loads DOLFINx and Gmsh

    out = []
    for i, member in enumerate(members):
        try:
            out.append(build(**member, comm=comm, cache=cache))
        except MeshError as exc:
            raise MeshError(f"bank member {i} {json.dumps(member)}: {exc}") from None
    return out
