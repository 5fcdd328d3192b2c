"""Off-node targets of a config (issue: a network that is right between the nodes).

Trains the config twice — as configured, and with the consistency term of weight W — and
prints, for each, the nodal and off-node relative L2 vs FEM, the worst off-node deviation
as a share of the field range, the lift-alone error, the wall time and the energy per
inference (spiking.energy_report). Targets: off-node ≤ 1.5x nodal, worst ≤ 2% of range,
energy within 10% of the run without the term.

    python benchmarks/offnode.py CONFIG [--steps N] [--weight W ...] [--pool P] [--out FILE.md]

Each --weight adds one run (default: 0.1); the run without the term always comes first.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import torch

import coupling
import spiking
from coupling.config import parse_run_config
from coupling.consistency import consistency_term
from coupling.runs.network import Trainer
from meshes.fenics import MPI


def run(doc: dict, weight: float, steps: int | None, pool: int | None = None) -> dict:
    """One training of `doc` with consistency `weight` (points drawn from `pool` per cell;
    None: the term's default); its off-node numbers."""
    if steps:
        doc["training"]["steps"] = steps
    doc["training"]["progress"] = False
    tr = Trainer(parse_run_config(doc), tempfile.mkdtemp(prefix="offnode-"), MPI.COMM_WORLD)
    tr.setup()
    disc = tr.disc
    if weight:
        extra = {} if pool is None else {"pool": pool}
        disc.consistency = consistency_term(disc, weight, doc["training"].get("seed", 0),
                                            **extra)
    t0 = time.perf_counter()
    t = tr.cfg.training
    coupling.fit(tr.net, disc, steps=t.steps, lr=t.lr, schedule=t.schedule,
                 log_every=t.steps, comm=tr.comm)
    wall = time.perf_counter() - t0
    m = disc.measure(tr.net)
    monitor = spiking.ActivityMonitor(tr.net)
    with torch.no_grad(), monitor:
        disc.field(tr.net)
    energy = spiking.energy_report(tr.net, monitor).to_dict()["snn_pj"] if getattr(
        tr.net, "neuron", "ann") != "ann" else None
    o = m.get("offnode", {})
    if MPI.COMM_WORLD.rank == 0 and getattr(disc, "_offnode", None) is not None:
        print(f"W = {weight:g}: where the off-node error sits:", where(disc, tr.net), flush=True)
    used = disc.consistency.pool if weight else None
    return {"weight": weight, "pool": used, "steps": t.steps, "nodal": m["rel_l2"],
            "offnode": o.get("rel_l2"),
            "boundary": o.get("boundary_cells"), "interior": o.get("interior_cells"),
            "interpolant": o.get("interpolant_rel_l2"), "worst_of_range": o.get("max_of_range"),
            "lift": m.get("lift_rel_l2"), "energy_pj": energy, "wall_s": wall}


def interface_cells(dmesh) -> np.ndarray:
    """Owned cells with a vertex shared with a cell of another phase (this rank's view)."""
    mesh = dmesh.mesh
    tdim = mesh.topology.dim
    n = mesh.topology.index_map(tdim).size_local
    if dmesh.cell_tags is None or len(dmesh.cell_names) < 2:
        return np.zeros(n, bool)
    mesh.topology.create_connectivity(tdim, 0)
    c2v = mesh.topology.connectivity(tdim, 0).array.reshape(-1, tdim + 1)
    phase = np.full(len(c2v), -1)
    phase[dmesh.cell_tags.indices] = dmesh.cell_tags.values
    nv = int(c2v.max()) + 1
    lo = np.full(nv, np.iinfo(np.int64).max)
    hi = np.full(nv, np.iinfo(np.int64).min)
    for k in range(tdim + 1):
        np.minimum.at(lo, c2v[:, k], phase)
        np.maximum.at(hi, c2v[:, k], phase)
    mixed = lo != hi
    return mixed[c2v[:n]].any(axis=1)


def where(disc, net: torch.nn.Module, top: float = 0.01) -> dict:
    """Where the raw network's off-node error sits (one rank): share of ∫|u − u_FEM|² and of
    the worst `top` fraction of points in boundary / interface cells, beside those cells'
    share of the points; the worst point and its cell's kind; the worst deviation of the
    interpolant of the nodal values (what the nodal error alone gives) as a share of the
    range."""
    probe = disc._offnode
    pts = probe.pts
    vals = probe.values(disc, net)
    d2 = np.sum((vals["network"] - probe.ref) ** 2, axis=1)
    span = float(probe.ref.max() - probe.ref.min()) or 1.0
    interp = np.sqrt(np.sum((vals["interpolant"] - probe.ref) ** 2, axis=1).max(initial=0.0))
    b = pts.boundary
    i = interface_cells(disc.problem.dmesh)[pts.cells]
    worst = np.argsort(d2)[::-1][: max(1, int(top * len(d2)))]
    e2 = np.maximum(pts.weights * d2, 0.0)
    share = lambda m: float(e2[m].sum() / max(e2.sum(), 1e-300))  # noqa: E731
    k = worst[0]
    return {"interpolant_worst_of_range": float(interp / span),
            "points_boundary": float(b.mean()), "points_interface": float(i.mean()),
            "err2_boundary": share(b), "err2_interface": share(i),
            "err2_interface_not_boundary": share(i & ~b),
            "top_boundary": float(b[worst].mean()), "top_interface": float(i[worst].mean()),
            "worst_x": [round(float(v), 3) for v in pts.x[k]],
            "worst_cell": "+".join(n for n, f in (("boundary", b[k]), ("interface", i[k])) if f)
            or "interior"}


def main() -> None:
    """Both runs of one config, as a markdown table on stdout (and --out)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--steps", type=int)
    p.add_argument("--weight", type=float, action="append",
                   help="consistency weight of an extra run (repeatable; default 0.1)")
    p.add_argument("--pool", type=int, help="in-cell points per cell the term draws from "
                   "(default: coupling.consistency's)")
    p.add_argument("--out")
    a = p.parse_args()
    doc = tomllib.loads(Path(a.config).read_text())
    weights = [0.0, *(a.weight or [0.1])]
    rows = []
    for w in weights:
        rows.append(run(tomllib.loads(Path(a.config).read_text()), w, a.steps, a.pool))
        if MPI.COMM_WORLD.rank == 0:
            print(rows[-1], flush=True)
    keys = list(rows[0])
    lines = [f"### {a.config}", "", "| " + " | ".join(keys) + " |",
             "|" + "---|" * len(keys)]
    fmt = lambda v: "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    e0 = rows[0]["energy_pj"]
    for r in rows[1:]:
        if e0 and r["energy_pj"]:
            lines.append(f"\nenergy per inference with/without the term (W = {r['weight']:g}): "
                         f"{r['energy_pj'] / e0:.3f}")
    text = "\n".join(lines) + "\n"
    del doc
    if MPI.COMM_WORLD.rank == 0:
        print(text)
        if a.out:
            with open(a.out, "a") as fh:
                fh.write(text + "\n")


if __name__ == "__main__":
    main()
