"""`neurofem demo`: the default job (for now: build and preview the default RVE mesh)."""

from __future__ import annotations

import argparse

from meshes.errors import MeshError

USER_ERRORS = (MeshError, OSError)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    p = sub.add_parser("demo", help="run the default job")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    raise MeshError("demo not built yet")
