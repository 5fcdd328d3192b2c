"""`build`: one call from a kind and options to a distributed DOLFINx mesh with named tags."""

from __future__ import annotations

from typing import Any

from meshes.fenics import MPI

from .core import DistributedMesh, distribute, gmsh_session
from .errors import MeshError
from .registry import build_model, resolve


def build(kind: str, size: float | None = None, comm: MPI.Comm = MPI.COMM_WORLD,
          **options: Any) -> DistributedMesh:
    """Build mesh `kind` with Gmsh on rank 0 and distribute it over `comm` (collective).

    ``size=None`` takes the kind's default size. The result carries ``kind``, ``options``
    (every option resolved, ``size`` included: a cache key) and ``info``, identical on all
    ranks: ``gdim``, ``quality`` (cells, min/mean minSICN and gamma, min (dihedral) angle),
    ``measures`` (area/volume per cell group), ``bbox`` and the builder's extras, e.g. for
    RVEs ``centres``, ``radii``, ``semi_axes``, ``axes``, ``volume_fraction_mesh``.
    An invalid request raises :class:`MeshError` on every rank.
    """
    opts = resolve(kind, size, options)  # every rank checks the request: same error everywhere
    failure, info = None, None
    if comm.rank == 0:
        with gmsh_session(f"neurofem-{kind}") as model:
            try:
                info = build_model(kind, **opts)
            except MeshError as exc:
                failure = str(exc)
            except Exception as exc:  # Gmsh/OCC failures: report on every rank, never hang
                failure = f"{kind}: Gmsh failed: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            failure, info = comm.bcast((failure, info), root=0)
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
