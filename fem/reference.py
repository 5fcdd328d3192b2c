"""Reference solutions: solve once, cache on disk, write XDMF/VTX for ParaView, load back.

Two caches, both keyed by a SHA-256 of (mesh identity, problem table, degree, software
versions) and both checked by the checksums of their ``manifest.json`` (a damaged entry is
solved again and replaced): the folder a caller names (a run's ``reference/``, with the
files for viewing) and the user cache of :mod:`fem.cache` shared by every run on this
machine, so a second run on the same mesh and problem skips the solve. The mesh identity is its
builder kind + resolved options when it came from :func:`meshes.build`, otherwise a
fingerprint of geometry and topology (global counts and coordinate moments).

Storage (``<cache>/<key>/field.npz``): every field's dof values gathered to rank 0
together with their dof-node **coordinates**; loading matches the coordinates of the
local dofs with a k-d tree. It therefore works for the same mesh on *any* number of
ranks and any partition (the mesh must be the same geometry; matching tolerance is
1e-8 of the bounding-box diameter). ``field.xdmf`` (P1 on affine geometry) or
``field.bp`` (VTX, otherwise) are for viewing only.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from meshes import DistributedMesh
from meshes.fenics import MPI, dolfinx

from .cache import MANIFEST, atomic_write, default_store, key_of, verify, write_manifest
from .config import ProblemTable
from .errors import FemError
from .problems import build_problem
from .problems.common import SpaceTimeSeries

REQUIRED = ("field.npz", "meta.json")  # what an entry's manifest must vouch for


@dataclass
class Reference:
    """A reference solution: named fields on V plus what the solve reported."""

    V: dolfinx.fem.FunctionSpace
    fields: dict[str, dolfinx.fem.Function]
    info: dict
    results: dict = field(default_factory=dict)
    series: SpaceTimeSeries | None = None
    from_cache: bool = False

    @property
    def u(self) -> dolfinx.fem.Function:
        return next(iter(self.fields.values()))


def mesh_fingerprint(dmesh: DistributedMesh) -> dict:
    """What identifies a mesh for caching: builder kind + options, or a geometry hash."""
    if dmesh.kind:
        return {"kind": dmesh.kind, "options": dmesh.options}
    mesh, comm = dmesh.mesh, dmesh.comm
    tdim = mesh.topology.dim
    n_nodes = mesh.geometry.index_map().size_local
    x = mesh.geometry.x[:n_nodes]
    moments = comm.allreduce(np.concatenate([x.sum(0), (x**2).sum(0)]), op=MPI.SUM)
    return {
        "cells": mesh.topology.index_map(tdim).size_global,
        "nodes": mesh.geometry.index_map().size_global,
        "cell": mesh.topology.cell_name(),
        "moments": [float(f"{m:.10g}") for m in moments],
        "cell_names": dmesh.cell_names,
        "facet_names": dmesh.facet_names,
    }


def cache_doc(dmesh: DistributedMesh, spec: ProblemTable) -> dict:
    """What determines a reference: the mesh identity, the problem table and the degree."""
    return json.loads(json.dumps({"mesh": mesh_fingerprint(dmesh), "problem": spec.raw,
                                  "degree": spec.degree}, sort_keys=True, default=str))




def _verified(folder: Path | None, comm: MPI.Comm) -> bool:
    """Rank 0 checks the entry's checksums (a damaged one is warned about); all ranks agree."""
    ok = False
    if comm.rank == 0 and folder is not None and folder.is_dir():
        why = verify(folder, REQUIRED)
        ok = why is None
        if not ok:
            warnings.warn(f"reference cache {folder} is damaged ({why}); solving again",
                          RuntimeWarning, stacklevel=3)
    return comm.bcast(ok, root=0)


def _store_entry(comm: MPI.Comm, doc: dict) -> Path | None:
    """The verified user-cache entry of `doc` (rank 0 looks, every rank gets the answer)."""
    found = None
    if comm.rank == 0:
        store = default_store()
        found = None if store is None else store.get("reference", doc, REQUIRED)
    return comm.bcast(found, root=0)


def reference(
    dmesh: DistributedMesh,
    spec: ProblemTable,
    cache_dir: str | Path | None = None,
    write_fields: bool = True,
) -> Reference:
    """The reference solution: from `cache_dir`, else from the user cache (fem.cache), else
    solved; then stored in both (collective). Damaged entries are detected and rebuilt."""
    comm = dmesh.comm
    problem = build_problem(dmesh, spec)
    doc = cache_doc(dmesh, spec)
    folder = None if cache_dir is None else Path(cache_dir) / key_of("reference", doc)
    if _verified(folder, comm):
        return load(folder, problem.V)
    ref = None
    entry = _store_entry(comm, doc)
    if entry is not None:
        ref = load(entry, problem.V)
    else:
        sol = problem.solve()
        fields = {"u": sol.u, **sol.fields} if sol.fields else {"u": sol.u}
        ref = Reference(problem.V, fields, sol.info, sol.results, sol.series)
        arrays, meta = _collect(ref)
        store = default_store() if comm.rank == 0 else None
        if store is not None:
            store.put("reference", doc, lambda tmp: _write_entry(tmp, arrays, meta))
    if folder is not None:
        save(ref, folder, write_fields=write_fields)
    comm.barrier()
    return ref


def _gather_field(u: dolfinx.fem.Function) -> tuple[np.ndarray, np.ndarray] | None:
    V = u.function_space
    n = V.dofmap.index_map.size_local
    bs = V.dofmap.index_map_bs
    x = V.tabulate_dof_coordinates()[:n]
    vals = u.x.array[: n * bs].reshape(n, bs)
    comm = V.mesh.comm
    xs, vs = comm.gather(x, root=0), comm.gather(vals, root=0)
    if comm.rank != 0:
        return None
    return np.vstack(xs), np.vstack(vs)


def _collect(ref: Reference) -> tuple[dict, dict]:
    """Every field gathered to rank 0 (collective) and the metadata: (arrays, meta)."""
    arrays = {}
    for name, u in ref.fields.items():
        g = _gather_field(u)
        if g is not None:
            arrays["coordinates"], arrays[f"values_{name}"] = g
    if ref.series is not None and ref.V.mesh.comm.rank == 0:  # replicated on every rank
        arrays["series_times"] = ref.series.times
        arrays["series_points"] = ref.series.points
        arrays["series_values"] = ref.series.values
    meta = {
        "fields": list(ref.fields),
        "info": ref.info,
        "results": ref.results,
        "element": str(ref.V.ufl_element()),
        "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return arrays, meta


def _write_entry(folder: Path, arrays: dict, meta: dict) -> None:
    """field.npz and meta.json, each atomically (rank 0; the manifest comes after)."""
    atomic_write(folder / "field.npz", lambda f: np.savez(f, **arrays))
    atomic_write(folder / "meta.json", json.dumps(meta, indent=2, default=float).encode())


def save(ref: Reference, folder: str | Path, write_fields: bool = True) -> Path:
    """Write field.npz, meta.json and their manifest.json (+ field.xdmf / field.bp) into
    `folder` (collective). Every file is replaced atomically; the manifest is written last."""
    folder = Path(folder)
    comm = ref.V.mesh.comm
    if comm.rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
    comm.barrier()
    arrays, meta = _collect(ref)
    if comm.rank == 0:
        (folder / MANIFEST).unlink(missing_ok=True)  # invalid until the new files are in
        _write_entry(folder, arrays, meta)
        write_manifest(folder, names=REQUIRED)
    comm.barrier()
    if write_fields:
        write_fields_file(ref.fields, folder / "field")
    comm.barrier()
    return folder


def write_fields_file(fields: dict[str, dolfinx.fem.Function], stem: Path) -> Path:
    """XDMF for P1 fields on affine geometry, VTX (ADIOS2 .bp) otherwise (collective)."""
    u = next(iter(fields.values()))
    mesh = u.function_space.mesh
    degree = u.function_space.ufl_element().embedded_superdegree
    if degree == 1 and mesh.geometry.cmaps[0].degree == 1:
        path = stem.with_suffix(".xdmf")
        with dolfinx.io.XDMFFile(mesh.comm, str(path), "w") as f:
            f.write_mesh(mesh)
            for name, w in fields.items():
                w.name = name
                f.write_function(w)
        return path
    path = stem.with_suffix(".bp")
    for name, w in fields.items():
        w.name = name
    with dolfinx.io.VTXWriter(mesh.comm, str(path), list(fields.values()), engine="BP4") as f:
        f.write(0.0)
    return path


def load(folder: str | Path, V: dolfinx.fem.FunctionSpace) -> Reference:
    """Read a cached reference onto the space V (collective; any partition of the same mesh)."""
    from scipy.spatial import cKDTree  # deferred: loads SciPy

    folder = Path(folder)
    comm = V.mesh.comm
    meta = json.loads((folder / "meta.json").read_text())
    data = np.load(folder / "field.npz")
    coords = data["coordinates"]
    n = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
    bs = V.dofmap.index_map_bs
    x = V.tabulate_dof_coordinates()[:n]
    diam = float(np.linalg.norm(coords.max(0) - coords.min(0))) or 1.0
    dist, idx = cKDTree(coords).query(x)
    bad = comm.allreduce(int((dist > 1e-8 * diam).sum()), op=MPI.SUM)
    if bad:
        raise FemError(
            f"cached reference {folder}: {bad} dofs of this mesh have no match "
            "(different mesh or element?)"
        )
    fields = {}
    for name in meta["fields"]:
        u = dolfinx.fem.Function(V, name=name)
        u.x.array[: n * bs] = data[f"values_{name}"][idx].reshape(-1)
        fields[name] = u
    series = None
    if "series_times" in data:
        series = SpaceTimeSeries(data["series_times"], data["series_points"], data["series_values"])
    return Reference(V, fields, meta["info"], meta["results"], series, from_cache=True)
