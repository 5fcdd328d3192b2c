"""Error vs energy Pareto sweep of spiking designs on one problem.

    python -m benchmarks.pareto lshape [--quick] [--steps N] [--grid NAME] [--out DIR]
    neurofem bench --pareto lshape [--quick]

PROBLEM is ``lshape`` (examples/lshape-vsn-galerkin.toml), ``bracket``
(examples/bracket-bending.toml), ``cube-spheres``
(benchmarks/configs/bench-cube-spheres.toml), ``rve`` (benchmarks/configs/bench-rve-
elasticity.toml) or a config path. Every design of the grid — activity-regulariser weight
λ (:func:`coupling.fit` ``activity_weight``), threshold (fixed or learnable), shape,
time steps T_s, Fourier features, a spiking input encoder (:mod:`spiking.encoders`) — is
trained on the config's discretisation with its training settings (its optimizer and
output scale too), then measured: relative
L2 error against the FEM reference and the energy per inference point relative to the ANN
of identical shape in both conventions (full = compute + memory, compute-only), with the
zero-activity floor of the shape. Writes ``pareto-<problem>[-quick].json``, ``.md`` and
``.png`` (error vs ratio, both conventions, the non-dominated front marked, the target box
≤ 1% at ≤ 0.30× drawn) into ``benchmarks/results/``. ``--quick`` (a coarse mesh, a few
steps, three designs) is a smoke run of the whole path for the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import coupling
import spiking
from coupling.training.resources import check
from fem.errors import FemError

from .grid import BenchError
from .harness import RESULTS, git_info, machine
from .measure import elasticity_extras

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROBLEMS = {"lshape": ROOT / "examples" / "lshape-vsn-galerkin.toml",
            "bracket": ROOT / "examples" / "bracket-bending.toml",
            "cube-spheres": HERE / "configs" / "bench-cube-spheres.toml",
            "rve": HERE / "configs" / "bench-rve-elasticity.toml"}
TARGET_ERROR, TARGET_RATIO = 0.01, 0.30

#: design grids: each entry overrides the config's [network] table (plus "lam", "encoder")
GRIDS = {
    "quick": [{"label": "base"}, {"label": "lam0.3-learn", "lam": 0.3, "learn_threshold": True},
              {"label": "hat16-T1", "encoder": ["hat", 16], "num_steps": 1}],
    "design": [
        {"label": "config"},
        {"label": "T1", "num_steps": 1},
        {"label": "T1-th0.05-learn", "num_steps": 1, "threshold": 0.05, "learn_threshold": True},
        {"label": "T1-lam0.1-learn", "num_steps": 1, "lam": 0.1, "learn_threshold": True},
        {"label": "T1-lam0.3-learn", "num_steps": 1, "lam": 0.3, "learn_threshold": True},
        {"label": "T1-F16", "num_steps": 1, "fourier_features": 16},
        {"label": "hat32-T1", "num_steps": 1, "encoder": ["hat", 32]},
        {"label": "hat32-T1-lam0.1-learn", "num_steps": 1, "encoder": ["hat", 32], "lam": 0.1,
         "learn_threshold": True},
        {"label": "hat64-T1-96", "num_steps": 1, "encoder": ["hat", 64], "hidden": [96, 96]},
        {"label": "onehot64-T1", "num_steps": 1, "encoder": ["onehot", 64]},
    ],
    # 3D problems (5, 6): events into the first layer (hat / one-hot encoders of x, y, z),
    # widths 64 and 96, the demo's threshold 0.005; sized for ~25 min on a shared 2-core VM
    "design3d": [
        {"label": "config"},
        {"label": "T1", "num_steps": 1},
        {"label": "hat32-T1", "num_steps": 1, "encoder": ["hat", 32]},
        {"label": "hat32-T1-th0.05-learn", "num_steps": 1, "encoder": ["hat", 32],
         "threshold": 0.05, "learn_threshold": True},
        {"label": "hat64-T1", "num_steps": 1, "encoder": ["hat", 64]},
        {"label": "hat32-T1-96-th0.005", "num_steps": 1, "encoder": ["hat", 32],
         "hidden": [96, 96, 96], "threshold": 0.005},
        {"label": "onehot64-T1", "num_steps": 1, "encoder": ["onehot", 64]},
    ],
    # problem 6 follow-up: the 96-wide hat design at lower activity (threshold, λ)
    "rve-sparse": [
        {"label": "hat32-T1-96-th0.01", "num_steps": 1, "encoder": ["hat", 32],
         "hidden": [96, 96, 96], "threshold": 0.01},
        {"label": "hat32-T1-96-th0.005-lam0.03-learn", "num_steps": 1, "encoder": ["hat", 32],
         "hidden": [96, 96, 96], "threshold": 0.005, "lam": 0.03, "learn_threshold": True},
        {"label": "hat32-T1-96-th0.02-learn", "num_steps": 1, "encoder": ["hat", 32],
         "hidden": [96, 96, 96], "threshold": 0.02, "learn_threshold": True},
    ],
    "rve-lam": [  # between λ = 0 (28% activity) and λ = 0.03 (collapsed, 0.4%)
        {"label": "hat32-T1-96-th0.02-lam0.003-learn", "num_steps": 1, "encoder": ["hat", 32],
         "hidden": [96, 96, 96], "threshold": 0.02, "lam": 0.003, "learn_threshold": True},
        {"label": "hat32-T1-96-th0.02-lam0.01-learn", "num_steps": 1, "encoder": ["hat", 32],
         "hidden": [96, 96, 96], "threshold": 0.02, "lam": 0.01, "learn_threshold": True},
    ],
}
STRESS_TARGET = 0.10  # elasticity: stress error within the target too


def load(problem: str, quick: bool, steps: int | None) -> tuple[str, dict]:
    """(name, config dict) of PROBLEM, shrunk for ``quick`` or to ``steps``."""

    path = PROBLEMS.get(problem, Path(problem))
    if not path.is_file():
        raise BenchError(f"bench --pareto {problem!r}: expected one of {sorted(PROBLEMS)} "
                         "or a config file")
    where = f"bench --pareto {path}"
    try:
        doc = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise BenchError(f"{where}: not a UTF-8 text file (a TOML run config expected)") from None
    except tomllib.TOMLDecodeError as exc:
        raise BenchError(f"{where}: invalid TOML ({' '.join(str(exc).split())})") from None
    except OSError as exc:
        raise BenchError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if doc.get("model", "network") != "network":
        raise BenchError(f"{where}: model = {doc.get('model')!r}: the sweep trains coordinate "
                         "networks (model = \"network\")")
    if not isinstance(doc.get("mesh"), dict):
        raise BenchError(f"{where}: no [mesh] table (a run config with [mesh], [problem] and "
                         "[network] expected)")
    name = problem if problem in PROBLEMS else path.stem
    t = doc.setdefault("training", {})
    if not isinstance(t, dict):
        raise BenchError(f"{where}: [training] is not a table")
    t.pop("checkpoint_every", None)
    if quick:
        size = doc["mesh"].get("size", 0.1)
        doc["mesh"]["size"] = max(size if isinstance(size, int | float) else 0.1, 0.3)
        t["steps"] = 20
    if steps:
        t["steps"] = steps
    validate(doc, where)
    return name, doc


def validate(doc: dict, where: str) -> None:
    """The config as a run would check it, and its resource estimate, before any work
    (BenchError naming the file and the key)."""
    from coupling.config import parse_run_config  # deferred: loads DOLFINx, torch

    try:
        check(parse_run_config(doc))
    except FemError as exc:
        raise BenchError(f"{where}: {exc}") from None


def _network(trainer, design: dict):
    """The design's network: the config's [network] with the design's overrides."""
    from spiking.config import MLPConfig  # deferred: loads torch
    from spiking.encoders import PopulationEncoder  # deferred: loads torch
    from spiking.networks import MLP, hidden_unit  # deferred: loads torch

    table = trainer.cfg.network.model_dump(exclude={"in_dim", "out_dim", "bounds"})
    table.update({k: v for k, v in design.items() if k not in ("label", "lam", "encoder")})
    if table["seed"] is None:
        table["seed"] = trainer.cfg.training.seed
    table["out_dim"] = trainer.disc.block_size
    table["output_scale"] = trainer.net.output_scale.tolist()  # as the run resolved it
    if not design.get("encoder"):
        return spiking.mlp_from_config(table, in_dim=trainer.disc.in_dim,
                                       bounds=trainer.disc.bounds, dtype=trainer.dtype)
    table["fourier_features"] = 0  # the encoder codes the normalised coordinates
    cfg = MLPConfig.from_dict(table, prefix="network", in_dim=trainer.disc.in_dim,
                              bounds=[list(map(float, b)) for b in trainer.disc.bounds])
    mode, levels = design["encoder"]
    import torch  # deferred: loads torch

    gen = torch.Generator().manual_seed(cfg.seed)
    return MLP(cfg.in_dim, cfg.hidden, out_dim=cfg.out_dim, bounds=cfg.bounds, seed=gen,
               unit=lambda n: hidden_unit(cfg, n, trainer.dtype), dtype=trainer.dtype,
               output_scale=cfg.output_scale, output_shift=cfg.output_shift,
               encoder=PopulationEncoder(cfg.in_dim, levels, mode))


def run_design(trainer, design: dict) -> dict:
    """Train one design from scratch and measure its error and energy."""
    import torch  # deferred: loads torch

    torch.manual_seed(trainer.cfg.training.seed)
    net = _network(trainer, design)
    t = trainer.cfg.training
    res = coupling.fit(net, trainer.disc, steps=t.steps, lr=t.lr, schedule=t.schedule,
                       gamma=t.gamma, step_size=t.step_size, batch=t.batch,
                       log_every=t.steps, comm=trainer.comm,
                       activity_weight=design.get("lam", 0.0), optimizer=t.optimizer)
    mon = spiking.ActivityMonitor(net)
    with torch.no_grad(), mon:
        trainer.disc.evaluate(net)
    en = spiking.energy_report(net, mon).to_dict()
    m = trainer.disc.measure(net)
    rec = {"label": design["label"], "design": {k: v for k, v in design.items() if k != "label"},
           "rel_l2": m["rel_l2"], "offnode_rel_l2": (m.get("offnode") or {}).get("rel_l2"),
           "train_s": res.wall_s,
           "steps": res.step, "widths": net.widths, "num_steps": net.num_steps,
           "activity": (res.measures.get("activity") or {}).get("mean"),
           "ratio": en["ratio"], "ratio_compute": en["compute_only"]["ratio"],
           "floor": en["floor"]["ratio"], "floor_compute": en["floor"]["ratio_compute"],
           "snn_pj": en["snn_pj"], "ann_pj": en["ann_pj"],
           "layers": {la["name"]: {"ratio": la["ratio"], "ratio_compute": la["ratio_compute"]}
                      for la in en["layers"]}}
    if trainer.cfg.problem.type == "elasticity":
        with torch.no_grad():
            rec["stress_rel"] = elasticity_extras(trainer, trainer.disc.field(net))["stress_rel"]
    return rec


def front(records: list[dict], key: str) -> list[str]:
    """Labels of the non-dominated designs (lower error and lower ``key`` ratio)."""
    ok = [r for r in records if r["rel_l2"] is not None]
    return [r["label"] for r in ok if not any(
        o["rel_l2"] <= r["rel_l2"] and o[key] <= r[key]
        and (o["rel_l2"] < r["rel_l2"] or o[key] < r[key]) for o in ok)]


def verdict(doc: dict) -> list[str]:
    """The target line: the cheapest design within the accuracy target (full convention),
    met or missed by how much, and its floor and activity (what bounds it)."""
    ok = [r for r in doc["records"] if r["rel_l2"] is not None and r["rel_l2"] <= TARGET_ERROR
          and r.get("stress_rel", 0.0) <= STRESS_TARGET]
    if not ok:
        return [f"- **Target missed**: no design within {TARGET_ERROR:.0%}."]
    b = min(ok, key=lambda r: r["ratio"])
    stress = f", stress {b['stress_rel']:.2%}" if "stress_rel" in b else ""
    met = b["ratio"] <= TARGET_RATIO
    off = ("" if b.get("offnode_rel_l2") is None else
           f" Off the nodes (the target is read at the nodes) the raw network of that design "
           f"is {b['offnode_rel_l2']:.2%} off.")
    return [f"- Target (≤ {TARGET_ERROR:.0%}{' and stress ≤ 10%' if stress else ''} at ≤ "
            f"{TARGET_RATIO}× full): **{'met' if met else 'missed'}** — cheapest design within "
            f"the error target: {b['label']}, {b['rel_l2']:.2%}{stress}, {b['ratio']:.3f}× full "
            f"({b['ratio_compute']:.3f}× compute-only)"
            + ("." if met else f", {b['ratio'] - TARGET_RATIO:.3f} above; its shape's floor at "
               f"zero activity is {b['floor']:.3f}× and it fires {b['activity']:.0%} (the "
               "ratio grows from the floor with activity; designs sparser than this one "
               "lose the accuracy, see the rows).") + off]


def markdown(doc: dict) -> str:
    """The sweep as a Markdown table (ratios in both conventions, front marked *)."""
    full, comp = set(doc["front"]["full"]), set(doc["front"]["compute"])
    stress = any("stress_rel" in r for r in doc["records"])
    lines = [f"# Pareto sweep: {doc['problem']}{' (quick)' if doc['quick'] else ''}", "",
             f"- command: `{doc['command']}`", f"- uptime at start: `{doc['uptime']}`",
             f"- commit `{doc['git']['commit']}`; total {doc['total_s']:.0f} s", "",
             "Energy per inference point relative to the ANN of identical shape (same hidden "
             "widths, same dense input features); full = compute + memory, compute-only = the "
             "SNN papers' convention; floor = the shape's ratio at zero activity; * = on the "
             f"front. Target: ≤ {TARGET_ERROR:.0%} at ≤ {TARGET_RATIO}× (full). rel. L2: at the "
             "mesh nodes (what the front uses); off-node: the raw network at quadrature points "
             "off the nodes (coupling.pointwise)" + ("; stress: relative L2 of σ vs FEM"
                                                      if stress else "") + ".", "",
             *verdict(doc), "",
             "| design | widths | T_s | rel. L2 | off-node | " + ("stress | " if stress else "")
             + "activity | SNN/ANN full | compute-only | floor full / compute | train |",
             "|" + "---|" * (10 + stress)]
    for r in doc["records"]:
        act = "–" if r["activity"] is None else f"{r['activity']:.1%}"
        off = r.get("offnode_rel_l2")
        extra = (f"{'–' if off is None else format(off, '.2%')} | "
                 + (f"{r['stress_rel']:.2%} | " if stress else ""))
        lines.append(f"| {r['label']} | {r['widths']} | {r['num_steps']} | {r['rel_l2']:.2%} | "
                     f"{extra}{act} | {r['ratio']:.3f}{'*' * (r['label'] in full)} | "
                     f"{r['ratio_compute']:.3f}{'*' * (r['label'] in comp)} | {r['floor']:.3f} / "
                     f"{r['floor_compute']:.3f} | {r['train_s']:.0f} s |")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    """Error vs energy ratio, both conventions side by side, the front joined."""
    import matplotlib  # deferred: loads matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: loads matplotlib

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    recs = [r for r in doc["records"] if r["rel_l2"] is not None]
    for ax, key, name in ((axes[0], "ratio", "full"), (axes[1], "ratio_compute", "compute")):
        for r in recs:
            ax.scatter(r[key], r["rel_l2"], s=25)
            ax.annotate(r["label"], (r[key], r["rel_l2"]), fontsize=6)
        on = sorted((r for r in recs if r["label"] in doc["front"][name]), key=lambda r: r[key])
        ax.plot([r[key] for r in on], [r["rel_l2"] for r in on], "k--", lw=1, label="front")
        ax.axvline(TARGET_RATIO, color="g", lw=0.8)
        ax.axhline(TARGET_ERROR, color="g", lw=0.8, label="target")
        ax.set_xlabel(f"energy / equal ANN ({name.replace('compute', 'compute-only')})")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("relative L2 error vs FEM")
    fig.suptitle(f"Pareto sweep: {doc['problem']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(problem: str, *, quick: bool = False, steps: int | None = None,
          grid: str | None = None, out: Path | None = None, command: str = "",
          append: bool = False) -> dict:
    """Run the grid on PROBLEM and write JSON, Markdown and PNG; returns the JSON document
    (``append``: the designs join the records already in the JSON, same steps required)."""

    from coupling.config import parse_run_config  # deferred: loads DOLFINx, torch
    from coupling.runs.network import Trainer  # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    t0 = time.perf_counter()
    name, cfg_doc = load(problem, quick, steps)
    designs = GRIDS[grid or ("quick" if quick else "design")]
    uptime = os.popen("uptime").read().strip()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parse_run_config(cfg_doc), Path(tmp) / "run", MPI.COMM_SELF)
        trainer.setup()
        records = []
        for d in designs:
            records.append(run_design(trainer, d))
            print(f"pareto: {name} {d['label']}: rel. L2 {records[-1]['rel_l2']:.3%}, "
                  f"{records[-1]['ratio']:.3f}x full, {records[-1]['ratio_compute']:.3f}x "
                  "compute-only", file=sys.stderr, flush=True)
    doc = {"problem": name, "quick": quick, "command": command, "uptime": uptime,
           "git": git_info(), "machine": machine(), "steps": cfg_doc["training"]["steps"],
           "records": records, "front": {"full": front(records, "ratio"),
                                         "compute": front(records, "ratio_compute")},
           "total_s": time.perf_counter() - t0}
    out = Path(out or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"pareto-{name}{'-quick' if quick else ''}"
    if append and stem.with_suffix(".json").is_file():
        old = json.loads(stem.with_suffix(".json").read_text())
        if old["steps"] != doc["steps"]:
            raise BenchError(f"--append: {stem}.json has {old['steps']} steps, not "
                             f"{doc['steps']}")
        doc["records"] = old["records"] + records
        doc["front"] = {"full": front(doc["records"], "ratio"),
                        "compute": front(doc["records"], "ratio_compute")}
        doc["command"] = f"{old['command']}` then `{command}"
        doc["uptime"] = f"{old['uptime']}` / then `{uptime}"
        doc["total_s"] += old["total_s"]
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    stem.with_suffix(".md").write_text(markdown(doc))
    plot(doc, stem.with_suffix(".png"))
    doc["paths"] = [str(stem.with_suffix(s)) for s in (".json", ".md", ".png")]
    return doc


def main(argv: list[str] | None = None) -> int:
    """Command line of the sweep."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.pareto", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("problem")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--steps", type=int)
    p.add_argument("--grid", choices=sorted(GRIDS))
    p.add_argument("--out", type=Path)
    p.add_argument("--append", action="store_true",
                   help="add the designs to the records already in the JSON")
    a = p.parse_args(argv)
    cmd = "python -m benchmarks.pareto " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = sweep(a.problem, quick=a.quick, steps=a.steps, grid=a.grid, out=a.out, command=cmd,
                append=a.append)
    print(f"pareto: {len(doc['records'])} designs -> {', '.join(doc['paths'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
