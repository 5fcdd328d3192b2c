"""`neurofem demo`: the default job (for now: build and preview the default RVE mesh)."""

from __future__ import annotations

import argparse
import os

from meshes.errors import MeshError

USER_ERRORS = (MeshError, OSError)

# The default RVE: unit cube, ~15 % spherical inclusions, seed 0 (see `neurofem mesh rve`).
DEFAULT_RVE = {"inclusion": "sphere", "volume_fraction": 0.15, "seed": 0}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    p = sub.add_parser("demo", help="run the default job (for now: mesh and preview the "
                       "default RVE)")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Mesh the default RVE, write rve.msh + rve.xdmf + rve.png under --out, print a summary."""
    from meshes import build_model, gmsh_session, preview, summary_line, write

    os.makedirs(args.out, exist_ok=True)
    paths = {ext: os.path.join(args.out, f"rve.{ext}") for ext in ("msh", "xdmf", "png")}
    with gmsh_session("neurofem-demo"):
        info = build_model("rve", **DEFAULT_RVE)
        write(paths["msh"])
        write(paths["xdmf"])
        preview(paths["png"])
    print(f"{summary_line(info)} -> {paths['msh']}, {paths['xdmf']}, {paths['png']}", flush=True)
    return 0
