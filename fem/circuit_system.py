"""The linear system a spiking circuit solves: K, b of a problem with Dirichlet rows removed.

Rows are this rank's owned free dofs; columns its owned free dofs followed by the free
off-rank dofs its rows couple to (ghosts, in :class:`fem.operators.IndexLayout` order).
``b`` carries the lift of the Dirichlet values, b_f = b_f − K_fD u_D. :class:`GhostExchange`
brings owners' values of the ghost columns to every rank (one Alltoallv per call) and
gives the global sums and maxima the circuit needs: it is the ``comm`` of
:class:`spiking.circuit.Circuit`, which never imports MPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from meshes.fenics import MPI

from .mpi import displacements, fetch_from_owners
from .operators import IndexLayout, Operators, assemble_operators


class GhostExchange:
    """Owners' values at this rank's ghost columns; global sums and maxima (collective)."""

    def __init__(self, comm: MPI.Comm, ghost_globals: np.ndarray,
                 ghost_owners: np.ndarray, owned_globals: np.ndarray) -> None:
        self.comm = comm
        order = np.argsort(ghost_owners, kind="stable")
        self.recv_order = order
        self.rc = np.bincount(ghost_owners, minlength=comm.size).astype(np.int64)
        self.sc = np.empty_like(self.rc)
        comm.Alltoall(self.rc, self.sc)
        req = np.empty(int(self.sc.sum()), dtype=np.int64)
        send = np.ascontiguousarray(ghost_globals[order], dtype=np.int64)
        comm.Alltoallv([send, (self.rc, displacements(self.rc))],
                       [req, (self.sc, displacements(self.sc))])
        pos = np.searchsorted(owned_globals, req)  # owned free globals are sorted
        assert np.array_equal(owned_globals[pos], req), "a ghost is not a free owned dof"
        self.send_index = pos
        self.n_ghost = len(ghost_globals)

    def exchange(self, owned: np.ndarray) -> np.ndarray:
        """Values of the ghost columns from their owners (rows may be vectors)."""
        if self.comm.size == 1:
            return owned[:0]
        owned = np.ascontiguousarray(owned)
        width = int(np.prod(owned.shape[1:])) if owned.ndim > 1 else 1
        send = np.ascontiguousarray(owned[self.send_index].reshape(-1))
        got = np.empty(self.n_ghost * width, dtype=owned.dtype)
        self.comm.Alltoallv([send, (self.sc * width, displacements(self.sc * width))],
                            [got, (self.rc * width, displacements(self.rc * width))])
        out = np.empty_like(got.reshape((self.n_ghost,) + owned.shape[1:]))
        out[self.recv_order] = got.reshape((self.n_ghost,) + owned.shape[1:])
        return out

    def sum(self, value: float) -> float:
        """Global sum."""
        return self.comm.allreduce(value, op=MPI.SUM)

    def max(self, value: float) -> float:
        """Global maximum."""
        return self.comm.allreduce(value, op=MPI.MAX)


@dataclass
class CircuitSystem:
    """K_ff, b_f of one rank (owned free rows) and how they map back to the problem's dofs."""

    K: sp.csr_matrix  # (n_free_owned, n_free_owned + n_ghost)
    b: np.ndarray  # (n_free_owned,)
    ids: np.ndarray  # a key per owned free dof from its node and component (rank independent)
    free: np.ndarray  # positions of the owned free dofs among the owned unrolled dofs
    owned_values: np.ndarray  # (n_owned,) Dirichlet values at owned constrained dofs, else 0
    comm: GhostExchange
    layout: IndexLayout
    operators: Operators

    @cached_property
    def weights(self) -> np.ndarray:
        """Lumped-mass weight of each owned free dof (row sums of M): error norms integrate."""
        return np.asarray(self.operators.M_scipy.sum(axis=1)).ravel()[self.free]

    @property
    def n_global(self) -> int:
        """Number of free dofs over all ranks."""
        return int(self.comm.sum(len(self.b)))

    def full(self, x_free: np.ndarray) -> np.ndarray:
        """Owned unrolled dof values: x on the free dofs, the Dirichlet values elsewhere."""
        u = self.owned_values.copy()
        u[self.free] = x_free
        return u


def dof_keys(coordinates: np.ndarray, components: np.ndarray) -> np.ndarray:
    """int64 keys of dofs from their node coordinates and component: the same on any rank
    count (DOLFINx's global numbering is not), so noise and start vectors keyed by them are."""
    q = np.round(np.asarray(coordinates, np.float64) * 2.0**32).astype(np.int64).view(np.uint64)
    h = np.asarray(components, np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):  # multiply-xor hashing wraps modulo 2^64 on purpose
        for k in range(q.shape[1]):
            h = (h ^ q[:, k]) * np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(29)
    return h.view(np.int64)


def _dirichlet_columns(ops: Operators, comm: MPI.Comm) -> np.ndarray:
    """Dirichlet value at every local column (NaN where free); off-rank ones from owners."""
    lay = ops.layout
    owned = np.full(lay.n_owned, np.nan)
    mask = ops.dirichlet_dofs < lay.n_owned
    owned[ops.dirichlet_dofs[mask]] = ops.dirichlet_values[mask]
    first = int(lay.local_to_global[0]) if lay.n_owned else 0
    rest = fetch_from_owners(comm, owned, first, lay.local_to_global[lay.n_owned:],
                             lay.owners[lay.n_owned:])
    return np.concatenate([owned, np.asarray(rest, dtype=np.float64).reshape(-1)])


def circuit_system(problem, ops: Operators | None = None) -> CircuitSystem:
    """The circuit's system of a :mod:`fem.problems` problem (collective)."""
    comm = problem.V.mesh.comm
    ops = ops or assemble_operators(problem)
    lay = ops.layout
    g = _dirichlet_columns(ops, comm)
    free_col = np.isnan(g)
    free = np.flatnonzero(free_col[: lay.n_owned])
    K = ops.K_scipy.tocsr()[free]
    gD = np.where(free_col, 0.0, g)
    b = ops.b.numpy()[free] - K @ gD
    K = sp.csr_matrix(K[:, np.flatnonzero(free_col)])
    K.eliminate_zeros()
    ghost_cols = np.flatnonzero(free_col[lay.n_owned:]) + lay.n_owned
    owned_globals = lay.local_to_global[free]
    exchange = GhostExchange(comm, lay.local_to_global[ghost_cols],
                             lay.owners[ghost_cols].astype(np.int64), owned_globals)
    owned_values = np.where(free_col[: lay.n_owned], 0.0, g[: lay.n_owned])
    bs = lay.block_size
    ids = dof_keys(lay.coordinates[free // bs], free % bs)
    return CircuitSystem(K, b, ids, free, owned_values, exchange, lay, ops)
