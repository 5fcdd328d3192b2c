"""How a mesh kind declares itself: its options, its builder, and a cell budget check.

A builder module decorates its builder with :func:`register`; :mod:`meshes.registry`
imports the builder modules, so the table :data:`BUILDERS` is complete once it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import MeshError


@dataclass(frozen=True)
class Option:
    """One option of a mesh kind: name (python spelling), type, default and a help line."""

    name: str
    type: str  # "float" | "int" | "bool" | "str" | "floats" | "json"
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    positive: bool = False  # float/int must be > 0

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class Builder:
    """A registered mesh kind."""

    kind: str
    func: Callable[[Any, dict[str, Any]], dict[str, Any]]
    doc: str
    options: list[Option]
    default_size: float
    groups: str  # human-readable list of physical groups, for --help
    dim: int = field(default=3)


# Options every kind understands (besides its own).
COMMON = [
    Option("refine", "float", 0.5, "local size near interfaces/holes/corners, as a fraction of "
           "size (1 = uniform)", positive=True),
    Option("optimize", "bool", True, "3D: improve the worst tetrahedra with Gmsh's Netgen "
           "optimiser (keeps the surface mesh)"),
    Option("order", "int", 1, "geometric order of the elements (1 or 2)", choices=("1", "2")),
    Option("max_cells", "int", 2_000_000, "refuse requests expected to exceed this many cells",
           positive=True),
]

#: every registered mesh kind (filled by the builder modules' @register)
BUILDERS: dict[str, Builder] = {}


def register(kind: str, *, size: float, groups: str, dim: int, options: list[Option]):
    """Decorator adding a builder to the table of kinds."""

    def deco(func):
        doc = (func.__doc__ or "").strip().splitlines()[0]
        BUILDERS[kind] = Builder(kind, func, doc, options + COMMON, size, groups, dim)
        return func

    return deco


def check_cell_budget(opts: dict[str, Any], measure: float, dim: int,
                      feature_fraction: float = 0.3) -> None:
    """Refuse sizes that would produce more than ``max_cells`` cells (before meshing, no hang)."""
    h = opts["size"]
    # Regular simplices: ~2 triangles per h^2, ~6 tets per h^3; part of the domain refined.
    per = 2.0 if dim == 2 else 6.0
    fine = min(1.0, opts["refine"])
    estimate = per * measure / h**dim * ((1 - feature_fraction) + feature_fraction / fine**dim)
    if estimate > opts["max_cells"]:
        raise MeshError(f"size={h:g} would give about {estimate:.3g} cells, over max_cells="
                        f"{opts['max_cells']}; increase --size or --max-cells")
