"""The whole mesh on every rank, so SP stencils under MPI are the serial ones.

An SP row at a node on a rank's edge needs the node's serial neighbourhood (two rings for
second derivatives), which reaches past the one ghost layer a rank holds. The network is a
function of the coordinates, so a rank can evaluate it at any node: :func:`gather_mesh`
brings every node's coordinates (and network inputs) and every cell (with per-cell data such
as the phase) to every rank once, numbered *extended*: this rank's local nodes first (its
layout order), then the remaining nodes of the mesh in global order. Stencils built on it are
the serial ones; :func:`compress_columns` then keeps the local columns and the off-rank ones
the rows touch, and :func:`extend_boundary` gives the boundary map at those columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
import torch

from coupling.boundary import BoundaryValues


@dataclass
class GlobalMesh:
    """Every node and cell of the mesh, in this rank's extended numbering."""

    x: np.ndarray  # (n_global, gdim) coordinates
    inputs: np.ndarray  # (n_global, in_dim) network inputs
    glob: np.ndarray  # (n_global,) global node index of each extended node
    cells: np.ndarray  # (n_cells, d+1) extended node indices of every cell
    data: np.ndarray  # (n_cells,) the per-cell data gathered with the cells
    mine: np.ndarray  # (n_cells,) bool: the cell is owned by this rank
    n_local: int  # this rank's local nodes (the first n_local extended nodes)


def gather_mesh(comm, glob_local: np.ndarray, n_owned: int, x_local: np.ndarray,
                inputs_local: np.ndarray, cells_local: np.ndarray, n_owned_cells: int,
                data_local: np.ndarray) -> GlobalMesh:
    """Owned nodes and owned cells of every rank, on every rank (collective).

    glob_local: global node index of each local node (owned first); cells_local: local node
    indices (owned cells first)."""
    own = slice(0, n_owned)
    parts = comm.allgather((glob_local[own], x_local[own], inputs_local[own],
                            glob_local[cells_local[:n_owned_cells]], data_local[:n_owned_cells]))
    n = sum(len(p[0]) for p in parts)
    gx = np.zeros((n, x_local.shape[1]))
    gin = np.zeros((n, inputs_local.shape[1]), dtype=inputs_local.dtype)
    for p in parts:
        gx[p[0]], gin[p[0]] = p[1], p[2]
    glob = np.concatenate([glob_local, np.setdiff1d(np.arange(n), glob_local)])
    pos = np.empty(n, dtype=np.int64)
    pos[glob] = np.arange(n)
    cells = np.concatenate([pos[p[3]] for p in parts]).astype(np.int64)
    data = np.concatenate([p[4] for p in parts])
    mine = np.concatenate([np.full(len(p[3]), r == comm.rank) for r, p in enumerate(parts)])
    return GlobalMesh(gx[glob], gin[glob], glob, cells, data, mine, len(glob_local))


def facet_keys(cells: np.ndarray, ref) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Facets of simplex cells: cell → facet map (n_cells, d+1), the facets' sorted node
    lists and their number of cells (1: exterior)."""
    keys = np.concatenate([np.sort(cells[:, list(v)], axis=1) for v in ref])
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    c2f = inv.reshape(len(ref), len(cells)).T
    return c2f, uniq, np.bincount(inv, minlength=len(uniq))


def global_facet_tags(comm, local_keys: np.ndarray, local_tags: np.ndarray,
                      keys: np.ndarray, fill: int) -> np.ndarray:
    """Tag of each facet in `keys` (sorted global node lists) from every rank's tagged facets
    `local_keys` (sorted global node lists) and `local_tags` (collective); `fill` where none."""
    parts = comm.allgather((local_keys, local_tags))
    tagged = {tuple(k): t for p in parts for k, t in zip(p[0].tolist(), p[1].tolist(),
                                                         strict=True)}
    return np.array([tagged.get(tuple(k), fill) for k in keys.tolist()], dtype=np.int64)


def compress_columns(A: sps.csr_matrix, n_local: int, bs: int) -> tuple[sps.csr_matrix,
                                                                        np.ndarray]:
    """A over the local nodes and only those off-rank nodes its rows touch: (A, kept nodes)."""
    touched = np.unique(A.indices // bs) if A.nnz else np.zeros(0, dtype=np.int64)
    keep = np.union1d(np.arange(n_local), touched)
    n = A.shape[1] // bs
    pos = np.full(n, -1, dtype=np.int64)
    pos[keep] = np.arange(len(keep))
    A = A.tocsr()
    cols = pos[A.indices // bs] * bs + A.indices % bs
    return sps.csr_matrix((A.data, cols, A.indptr), shape=(A.shape[0], len(keep) * bs)), keep


def extend_boundary(comm, b: BoundaryValues, l2g_dofs: np.ndarray, n_owned_dofs: int,
                    ext_dofs: np.ndarray) -> BoundaryValues:
    """The boundary map b (over local dofs with global indices l2g_dofs) over the columns
    whose global dofs are ext_dofs (the local ones first; collective)."""
    if b.lift is None and b.mode != "exact":
        return b  # the identity (soft): nothing to extend
    n = int(comm.allreduce(n_owned_dofs))
    pos = np.full(n, -1, dtype=np.int64)
    pos[ext_dofs] = np.arange(len(ext_dofs))
    owned = l2g_dofs[:n_owned_dofs]
    lift = distance = index = values = None
    if b.lift is not None:
        lift, distance = (_dense(comm, a, owned, ext_dofs, n) for a in (b.lift, b.distance))
    if b.mode == "exact":
        idx = b.index.cpu().numpy()
        sel = idx < n_owned_dofs
        parts = comm.allgather((owned[idx[sel]], b.values.cpu().numpy()[sel]))
        gi = np.concatenate([p[0] for p in parts])
        gv = np.concatenate([p[1] for p in parts])
        at = pos[gi]
        index = torch.as_tensor(at[at >= 0], dtype=b.index.dtype, device=b.index.device)
        values = torch.as_tensor(gv[at >= 0], dtype=b.values.dtype, device=b.values.device)
    return BoundaryValues(b.mode, index, values, lift, distance, b.lifter)


def _dense(comm, a: torch.Tensor, owned: np.ndarray, ext_dofs: np.ndarray,
           n: int) -> torch.Tensor:
    """A per-dof tensor (owned entries from every rank) at the global dofs ext_dofs."""
    parts = comm.allgather((owned, a.detach().cpu().numpy()[: len(owned)]))
    full = np.zeros(n)
    for g, v in parts:
        full[g] = v
    return torch.as_tensor(full[ext_dofs], dtype=a.dtype, device=a.device)
