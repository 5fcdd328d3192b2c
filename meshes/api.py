"""`build`: one call from a kind and options to a distributed DOLFINx mesh with named tags.

With a ``cache`` (any object with ``get(namespace, doc, required)`` → folder or None and
``put(namespace, doc, write)``, e.g. :class:`fem.cache.Store`), rank 0 first looks the
request up by its resolved options (an imported file by its content hash too): a hit
reads the stored Gmsh ``mesh.msh`` and ``info.json`` instead of running the builder,
then distributes the mesh over any number of ranks exactly as a fresh build would.
A miss builds with Gmsh and stores the result. The cache never changes the mesh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

import gmsh

from meshes.fenics import MPI

from .core import DistributedMesh, distribute, gmsh_session
from .errors import MeshError
from .registry import build_model, resolve

MESH_FILE, INFO_FILE = "mesh.msh", "info.json"


class MeshCache(Protocol):
    """What `build` needs of a cache (fem.cache.Store provides it)."""

    def get(self, namespace: str, doc: Any, required: tuple[str, ...] = ()) -> Path | None: ...

    def put(self, namespace: str, doc: Any, write: Any) -> Path | None: ...


def cache_doc(kind: str, opts: dict[str, Any]) -> dict[str, Any]:
    """What identifies a mesh request: kind, resolved options and any input file's hash."""
    doc = {"kind": kind, "options": json.loads(json.dumps(opts, default=str))}
    path = opts.get("path")
    if isinstance(path, str) and path and Path(path).is_file():
        doc["file_sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return doc


def _store(cache: MeshCache, doc: dict, info: dict) -> None:
    """Write the current Gmsh mesh and its info into a new cache entry (rank 0)."""

    def write(folder: Path) -> None:
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", 1)
        try:
            gmsh.write(str(folder / MESH_FILE))
        finally:
            gmsh.option.setNumber("Mesh.Binary", 0)
        (folder / INFO_FILE).write_text(json.dumps(info, default=str))

    cache.put("mesh", doc, write)


def _cached(cache: MeshCache | None, doc: dict) -> tuple[Path, dict] | None:
    """(folder, info) of a verified cache entry, or None (rank 0)."""
    if cache is None:
        return None
    folder = cache.get("mesh", doc, required=(MESH_FILE, INFO_FILE))
    if folder is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        return folder, json.loads((folder / INFO_FILE).read_text())
    return None


def _build_rank0(kind: str, opts: dict, cache: MeshCache | None, model) -> tuple[Any, Any]:
    """Fill the Gmsh `model` on rank 0 from the cache or the builder: (failure, info)."""

    doc = cache_doc(kind, opts)
    hit = _cached(cache, doc)
    if hit is not None:
        try:
            gmsh.merge(str(hit[0] / MESH_FILE))
            return None, hit[1]
        except Exception:  # noqa: BLE001 - an unreadable entry: build as if it were absent
            gmsh.clear()
    try:
        info = build_model(kind, **opts)
    except MeshError as exc:
        return str(exc), None
    except Exception as exc:  # Gmsh/OCC failures: report on every rank, never hang
        return f"{kind}: Gmsh failed: {str(exc).splitlines()[0] if str(exc) else exc!r}", None
    if cache is not None:
        _store(cache, doc, info)
    return None, info


def build(kind: str, size: float | None = None, comm: MPI.Comm = MPI.COMM_WORLD,
          cache: MeshCache | None = None, **options: Any) -> DistributedMesh:
    """Build mesh `kind` with Gmsh on rank 0 and distribute it over `comm` (collective).

    ``size=None`` takes the kind's default size. The result carries ``kind``, ``options``
    (every option resolved, ``size`` included: a cache key) and ``info``, identical on all
    ranks: ``gdim``, ``quality`` (cells, min/mean minSICN and gamma, min (dihedral) angle),
    ``measures`` (area/volume per cell group), ``bbox`` and the builder's extras, e.g. for
    RVEs ``centres``, ``radii``, ``semi_axes``, ``axes``, ``volume_fraction_mesh``.
    ``cache``: reuse and store the Gmsh mesh (see the module docstring).
    An invalid request raises :class:`MeshError` on every rank.
    """
    opts = resolve(kind, size, options)  # every rank checks the request: same error everywhere
    failure, info = None, None
    if comm.rank == 0:
        with gmsh_session(f"neurofem-{kind}") as model:
            failure, info = comm.bcast(_build_rank0(kind, opts, cache, model), root=0)
            if failure is None:
                dm = distribute(model, comm, info["gdim"])
    else:
        failure, info = comm.bcast((None, None), root=0)
        if failure is None:
            dm = distribute(None, comm, info["gdim"])
    if failure is not None:
        raise MeshError(failure)
    dm.kind, dm.options, dm.info = kind, opts, info
    return dm
