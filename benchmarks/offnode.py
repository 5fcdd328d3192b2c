"""Off-node targets of a config (issue: a network that is right between the nodes).

Trains the config twice — as configured, and with the consistency term of weight W — and
prints, for each, the nodal and off-node relative L2 vs FEM, the worst off-node deviation
as a share of the field range, the lift-alone error, the wall time and the energy per
inference (spiking.energy_report). Targets: off-node ≤ 1.5x nodal, worst ≤ 2% of range,
energy within 10% of the run without the term.

    python benchmarks/offnode.py CONFIG [--steps N] [--weight W] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tomllib
from pathlib import Path

import torch

import coupling
import spiking
from coupling.config import parse_run_config
from coupling.trainer import Trainer
from meshes.fenics import MPI


def run(doc: dict, weight: float, steps: int | None) -> dict:
    """One training of `doc` with consistency `weight`; its off-node numbers."""
    if steps:
        doc["training"]["steps"] = steps
    doc["training"]["progress"] = False
    tr = Trainer(parse_run_config(doc), tempfile.mkdtemp(prefix="offnode-"), MPI.COMM_WORLD)
    tr.setup()
    disc = tr.disc
    if weight:
        from coupling.consistency import consistency_term

        disc.consistency = consistency_term(disc, weight, doc["training"].get("seed", 0))
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
    return {"weight": weight, "steps": t.steps, "nodal": m["rel_l2"], "offnode": o.get("rel_l2"),
            "boundary": o.get("boundary_cells"), "interior": o.get("interior_cells"),
            "interpolant": o.get("interpolant_rel_l2"), "worst_of_range": o.get("max_of_range"),
            "lift": m.get("lift_rel_l2"), "energy_pj": energy, "wall_s": wall}


def main() -> None:
    """Both runs of one config, as a markdown table on stdout (and --out)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--steps", type=int)
    p.add_argument("--weight", type=float, default=0.1)
    p.add_argument("--out")
    a = p.parse_args()
    doc = tomllib.loads(Path(a.config).read_text())
    rows = [run(tomllib.loads(Path(a.config).read_text()), w, a.steps) for w in (0.0, a.weight)]
    keys = list(rows[0])
    lines = [f"### {a.config}", "", "| " + " | ".join(keys) + " |",
             "|" + "---|" * len(keys)]
    fmt = lambda v: "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    e0, e1 = rows[0]["energy_pj"], rows[1]["energy_pj"]
    if e0 and e1:
        lines.append(f"\nenergy per inference with/without the term: {e1 / e0:.3f}")
    text = "\n".join(lines) + "\n"
    del doc
    if MPI.COMM_WORLD.rank == 0:
        print(text)
        if a.out:
            with open(a.out, "a") as fh:
                fh.write(text + "\n")


if __name__ == "__main__":
    main()
