"""`neurofem mesh KIND [options] -o FILE [--preview PNG]`: build, export and preview a mesh.

Runs on one process (no MPI): Gmsh builds and meshes, the mesh is written, a one-line
summary (cells, quality, measures, RVE volume fraction) is printed. The options of each
kind come from the builder table (``meshes.registry``); values are checked there, so a
bad value gives one ``neurofem: error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import MeshError

USER_ERRORS = (MeshError,)


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (``neurofem: error: ...``) and exit code 2."""

    def error(self, message: str):  # noqa: D102 - argparse hook
        self.exit(2, f"neurofem: error: {self.prog}: {message}\n")


def _kinds_epilog(table) -> str:
    lines = ["kinds (neurofem mesh KIND --help for details):"]
    for kind, b in table.items():
        flags = " ".join(o.flag for o in b.options)
        lines.append(f"  {kind:<19} {b.doc}\n  {'':<19} --size (default {b.default_size}) {flags}")
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `mesh` subcommand with one sub-subcommand per mesh kind."""
    from .registry import kinds  # deferred: loads Gmsh

    table = kinds()
    p = sub.add_parser("mesh", help="build a mesh with Gmsh, export it, preview it",
                       description="Build a mesh with Gmsh (physical groups for phases and "
                       "boundaries), write it (.msh keeps the groups; .xdmf, .vtu via meshio) and "
                       "optionally render a PNG preview.",
                       epilog=_kinds_epilog(table), formatter_class=argparse.RawTextHelpFormatter)
    p.error = _OneLineParser.error.__get__(p)  # unknown kind: one line too
    ks = p.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=_OneLineParser)
    for kind, b in table.items():
        kp = ks.add_parser(kind, help=b.doc, description=f"{b.doc}\nphysical groups: {b.groups}",
                           formatter_class=argparse.RawTextHelpFormatter)
        kp.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="output mesh: .msh (Gmsh physical tags), .xdmf or .vtu")
        kp.add_argument("--preview", metavar="PNG", help="also render an off-screen PNG preview")
        kp.add_argument("--size", metavar="FLOAT", default=None,
                        help=f"target element size (default {b.default_size})")
        for o in b.options:
            extra, metavar = {}, o.type.upper()
            if o.type == "bool":
                extra = {"nargs": "?", "const": "true"}
            elif o.type == "floats":  # --radii 0.2 0.4 (as --help shows), or 0.2,0.4
                extra, metavar = {"nargs": "+"}, "FLOAT"
            choices = f" {{{','.join(o.choices)}}}" if o.choices else ""
            kp.add_argument(o.flag, dest=f"opt_{o.name}", metavar=metavar, default=None,
                            help=f"{o.help}{choices} (default {o.default!r})", **extra)
        kp.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build the requested mesh, write it, preview it, print a one-line summary."""
    from .core import gmsh_session  # deferred: loads DOLFINx, Gmsh
    from .export import FORMATS, _suffix, preview, write  # deferred: loads Gmsh, meshio
    from .mesh_quality import summary_line  # deferred: loads Gmsh
    from .registry import build_model  # deferred: loads Gmsh

    for flag, path, allowed in (("-o/--output", args.output, FORMATS),
                                ("--preview", args.preview, (".png",))):
        if path:  # fail before meshing, not after: format, folder, not a directory, writable
            _suffix(path, allowed, flag)
            if os.path.isdir(path):
                raise MeshError(f"{flag}={path!r}: is a directory; give a file name")
            if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
                raise MeshError(f"{flag}={path!r}: folder is not writable")
    options = {k[4:]: " ".join(v) if isinstance(v, list) else v
               for k, v in vars(args).items() if k.startswith("opt_") and v is not None}
    with gmsh_session(f"neurofem-{args.kind}"):
        try:
            info = build_model(args.kind, args.size, **options)
        except MeshError:
            raise
        except Exception as exc:  # Gmsh/OCC failure on a valid-looking request
            raise MeshError(f"{args.kind}: Gmsh failed: {exc}") from None
        try:
            write(args.output)
            if args.preview:
                preview(args.preview)
        except OSError as exc:  # disk full, permissions changed under us
            raise MeshError(f"-o/--output={args.output!r}: {exc.strerror or exc}") from None
        except Exception as exc:  # Gmsh's own write errors are bare Exceptions
            raise MeshError(f"-o/--output={args.output!r}: cannot write "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                            ) from None
    print(summary_line(info) + f" -> {args.output}", file=sys.stdout, flush=True)
    return 0
