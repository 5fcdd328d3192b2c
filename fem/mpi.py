"""MPI exchanges of per-dof data: displacements of Alltoallv buffers, values from owners."""

from __future__ import annotations

import numpy as np

from meshes.fenics import MPI


def displacements(counts: np.ndarray) -> np.ndarray:
    """Start offsets of consecutive blocks of the given sizes (an Alltoallv's displs)."""
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)


def fetch_from_owners(comm: MPI.Comm, owned: np.ndarray, first_global: int,
                      globals_: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Values `owned[g − first_global]` held by each entry's owner, for entries owned elsewhere.

    `owned` is this rank's array over the globals it owns (starting at `first_global`),
    rows may be vectors; collective (one Alltoall of counts, two Alltoallv).
    """
    owned = np.ascontiguousarray(owned, dtype=np.float64)
    width = int(np.prod(owned.shape[1:])) if owned.ndim > 1 else 1
    order = np.argsort(owners, kind="stable")
    send = np.ascontiguousarray(np.asarray(globals_, dtype=np.int64)[order])
    sc = np.bincount(np.asarray(owners, dtype=np.int64), minlength=comm.size).astype(np.int64)
    rc = np.empty_like(sc)
    comm.Alltoall(sc, rc)
    req = np.empty(int(rc.sum()), dtype=np.int64)
    comm.Alltoallv([send, (sc, displacements(sc)), MPI.INT64_T],
                   [req, (rc, displacements(rc)), MPI.INT64_T])
    reply = np.ascontiguousarray(owned.reshape(len(owned), width)[req - first_global])
    got = np.empty((len(send), width), dtype=np.float64)
    comm.Alltoallv([reply, (rc * width, displacements(rc * width)), MPI.DOUBLE],
                   [got, (sc * width, displacements(sc * width)), MPI.DOUBLE])
    out = np.empty_like(got)
    out[order] = got
    return out.reshape((len(send),) + owned.shape[1:])
