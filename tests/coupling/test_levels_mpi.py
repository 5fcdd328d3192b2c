"""Coarse-to-fine training on 2 ranks equals 1 rank (run under `mpiexec -n 2`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_levels import Crash, run_levels, small_levels

from meshes.fenics import MPI


@pytest.mark.mpi
def test_two_ranks_train_the_hierarchy_like_one(tmp_path_factory):
    """Three levels (0.4 → 0.3 → 0.2, float64) on 2 ranks end with the parameters of 1 rank
    (to 1e-8), with the same level and nodal error in every metrics row and the same
    off-node errors at a point budget (the budget's cell sample does not depend on the
    ranks); a 2-rank resume inside level 1 ends there too. The coarse levels' consistency
    term is off here: its in-cell points are drawn per rank (equal in expectation only)."""
    comm = MPI.COMM_WORLD
    base = Path(comm.bcast(str(tmp_path_factory.mktemp("levels")) if comm.rank == 0 else None))
    doc = small_levels(offnode_points=300)
    for level in doc["training"]["levels"][:-1]:
        level["consistency_weight"] = 0.0
    par = run_levels(doc, base / "par", comm)
    ser = run_levels(doc, base / f"ser{comm.rank}", MPI.COMM_SELF)
    for (n, a), (_, b) in zip(par.net.state_dict().items(), ser.net.state_dict().items(),
                              strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-8, err_msg=n)
    if comm.rank == 0:
        rows = [[json.loads(x) for x in (base / d / "metrics.jsonl").read_text().splitlines()]
                for d in ("par", "ser0")]
        assert [r["level"] for r in rows[0]] == [r["level"] for r in rows[1]]
        assert [r["ranks"] for r in rows[0]] == [2] * len(rows[0])
        for p, s in zip(*rows, strict=True):
            assert p["rel_l2"] == pytest.approx(s["rel_l2"], rel=1e-6)
            assert ("offnode" in p) == ("offnode" in s)
            if "offnode" in p:
                assert p["offnode"]["rel_l2"] == pytest.approx(s["offnode"]["rel_l2"], rel=1e-6)
    with pytest.raises(KeyboardInterrupt):
        run_levels(doc, base / "cut", comm, callbacks=[Crash(28)])
    resumed = run_levels(doc, base / "cut", comm, resume=True)
    for (n, a), (_, b) in zip(par.net.state_dict().items(), resumed.net.state_dict().items(),
                              strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-12, err_msg=n)
