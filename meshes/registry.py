"""The table of mesh kinds: each builder declares its options once; Python API, CLI and
``--help`` all read them from here, and every value is checked here (→ :class:`MeshError`).

A builder is a function ``builder(model, opts) -> info`` that draws into the current
Gmsh model (on one process), adds physical groups, sets size fields and meshes it;
``info`` is a dict of builder extras and must contain ``"gdim"``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import gmsh

# importing the builder modules fills the table (each uses @register)
from . import imports, planar, rve, rve2d, solids  # noqa: F401
from .errors import MeshError
from .mesh_quality import group_measures, quality
from .registration import BUILDERS, Builder, Option


def kinds() -> dict[str, Builder]:
    """Every mesh kind and its builder record (options, default size, groups)."""
    return dict(BUILDERS)


def get(kind: str) -> Builder:
    """The builder of `kind`, or MeshError naming the known kinds."""
    table = kinds()
    if kind not in table:
        raise MeshError(f"unknown mesh kind {kind!r}; choose from {', '.join(sorted(table))}")
    return table[kind]


def describe(kind: str) -> str:
    """Multi-line description of a kind's options (for --help and docs)."""
    b = get(kind)
    lines = [f"{kind}: {b.doc}", f"  groups: {b.groups}",
             f"  --size FLOAT  (default {b.default_size})"]
    for o in b.options:
        lines.append(f"  {o.flag} {o.type.upper()}  (default {o.default!r}) {o.help}")
    return "\n".join(lines)


def _coerce(kind: str, opt: Option, value: Any) -> Any:
    """Turn `value` (python or CLI string) into opt's type, or MeshError naming it."""
    shown = value if isinstance(value, str) else repr(value)
    where = f"{kind} option {opt.flag}={shown}"
    try:
        if opt.type in ("float", "int"):
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str):
                value = float(value) if opt.type == "float" else int(value)
            v = float(value) if opt.type == "float" else value
            if opt.type == "int" and (not isinstance(v, int) and not float(v).is_integer()):
                raise ValueError
            v = int(v) if opt.type == "int" else v
            if not math.isfinite(v):
                raise ValueError
        elif opt.type == "bool":
            if isinstance(value, str):
                low = value.lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                v = low in ("1", "true", "yes", "on")
            elif isinstance(value, bool | int):
                v = bool(value)
            else:
                raise ValueError
        elif opt.type == "str":
            v = str(value)
        elif opt.type == "floats":
            if isinstance(value, str):
                value = [float(s) for s in value.replace(",", " ").split()]
            if isinstance(value, int | float):
                value = [value]
            v = tuple(float(x) for x in value)
            if not all(math.isfinite(x) for x in v):
                raise ValueError
        elif opt.type == "json":
            v = json.loads(value) if isinstance(value, str) else value
            v = json.loads(json.dumps(v))  # plain lists/numbers, as stored in dm.options
        else:  # pragma: no cover - programming error
            raise AssertionError(opt.type)
    except (ValueError, TypeError, OverflowError):
        raise MeshError(f"{where}: expected {opt.type}") from None
    if opt.choices is not None and str(v) not in opt.choices:
        raise MeshError(f"{where}: choose from {', '.join(opt.choices)}")
    if opt.positive and v <= 0:
        raise MeshError(f"{where}: must be > 0")
    return v


def resolve(kind: str, size: float | None, options: dict[str, Any]) -> dict[str, Any]:
    """All options of `kind` with defaults filled in and values checked, incl. ``size``."""
    b = get(kind)
    if size is None:
        size = b.default_size
    size_opt = Option("size", "float", b.default_size, "target element size", positive=True)
    resolved = {"size": _coerce(kind, size_opt, size)}
    known = {o.name: o for o in b.options}
    for name in options:
        if name not in known:
            raise MeshError(f"{kind} has no option {name!r}; options: "
                            f"size, {', '.join(sorted(known))}")
    for o in b.options:
        value = options.get(o.name, o.default)
        resolved[o.name] = None if value is None else _coerce(kind, o, value)
    return resolved


def build_model(kind: str, size: float | None = None, **options: Any) -> dict[str, Any]:
    """Build and mesh `kind` in the current Gmsh model (inside ``gmsh_session()``); return info."""

    opts = resolve(kind, size, options)
    b = get(kind)
    gmsh.option.setNumber("General.NumThreads", 1)  # same input → same mesh, bit for bit
    gmsh.option.setNumber("Mesh.RandomSeed", 1)
    info = b.func(gmsh.model, opts)
    # Free points (e.g. arc centres, stray STEP vertices) carry mesh nodes outside every
    # cell, which DOLFINx's model_to_mesh cannot distribute: drop them.
    orphans = [(0, t) for _, t in gmsh.model.getEntities(0)
               if len(gmsh.model.getAdjacencies(0, t)[0]) == 0]
    if orphans:
        gmsh.model.removeEntities(orphans)
    if opts["optimize"] and not info.get("keep_mesh") and gmsh.model.getEntities(3):
        gmsh.model.mesh.optimize("Netgen")  # min dihedral ~3° → ~15° on RVEs, ~1 s
    if opts["order"] == 2:
        gmsh.model.mesh.setOrder(2)
    info["quality"] = quality()
    info["measures"] = m = group_measures()
    if kind == "rve":  # what the mesh really holds (straight facets cut the curved surfaces)
        info["volume_fraction_mesh"] = m["inclusion"] / (m["inclusion"] + m["matrix"]) \
            if "inclusion" in m else 1.0 - m["matrix"]
    info.setdefault("bbox", list(gmsh.model.getBoundingBox(-1, -1)))
    info["kind"] = kind
    info["options"] = opts
    return info
