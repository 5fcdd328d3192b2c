"""`neurofem mesh`: build, export and preview meshes from the command line."""

from __future__ import annotations

import argparse

from .errors import MeshError

USER_ERRORS = (MeshError,)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `mesh` subcommand."""
    p = sub.add_parser("mesh", help="build a mesh with Gmsh, export it, preview it")
    p.set_defaults(handler=lambda a: 0)
