"""PISNN (C-LIF + CFQ) energy sweep: error, spikes, energy and drift vs quantum and broadcast.

    python -m benchmarks.pisnn_sweep heat1d|laplace2d|diffusion3d [--quick] [--out DIR]
        [--resolution R ...] [--broadcast B ...] [--cfl C ...]

For each quantum resolution R (``clif.resolution``: q = R·u_s·min V) the problem's example
config (``examples/<problem>-clif.toml``) is trained once at its explicit step (CFL 0.9);
the trained flux network is then rolled out with integer quanta at every step size C (CFL
safety factor of the stable step) and every send-on-delta broadcast step B (a fraction of
the field scale u_s; 0 = a cell tells its facets every change, :mod:`spiking.cfq`). Each
point records the rollout's relative L2 error (heat1d at t = 1, laplace2d at the relaxed
steady state, diffusion3d at t = 0.2 against FEM), the mass drift in quanta (exactly 0),
spikes per step (quanta moved, neurons fired), flux evaluations and broadcasts per step,
and the energy per step of the spiking update against the float finite-volume update with
the same flux network at the same Δt, in both conventions (full = compute + memory,
compute-only; :meth:`spiking.CLIFSolver.energy_per_step`). A smaller step makes both
updates cheaper per simulated time differently, so each point also gives the rollout's
spiking energy over the float FV rollout at CFL 0.9 (same horizon): per simulated time.

Writes ``pisnn-sweep-<problem>[-quick].json``, ``.md`` and ``.png`` into
``benchmarks/results/``. Target (issue 12): a point with ≤ 0.30× the float FV energy per
step, 0 drift and error ≤ 2% (heat1d, laplace2d) / ≤ 5% (diffusion3d).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from fem.errors import ConfigError

from .grid import BenchError
from .harness import RESULTS, git_info, machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROBLEMS = ("heat1d", "laplace2d", "diffusion3d")
TARGET_ERROR = {"heat1d": 0.02, "laplace2d": 0.02, "diffusion3d": 0.05}
TARGET_RATIO = 0.30
#: the full sweep per problem: resolutions, CFL factors, broadcast steps
GRIDS = {"heat1d": ([1e-4, 1e-3], [0.9, 0.3], [0.0, 0.002, 0.005, 0.01, 0.02]),
         "laplace2d": ([1e-4, 1e-3], [0.9, 0.3], [0.0, 0.001, 0.002, 0.005]),
         "diffusion3d": ([1e-4], [0.9], [0.0, 0.002, 0.005, 0.01, 0.02])}
QUICK = ([1e-4], [0.9], [0.0, 0.005])


def load(problem: str, quick: bool) -> dict:
    """The example config of PROBLEM (quick: a few training steps, no progress bar)."""
    if problem not in PROBLEMS:
        raise BenchError(f"pisnn_sweep {problem!r}: expected one of {list(PROBLEMS)}")
    doc = tomllib.loads((ROOT / "examples" / f"{problem}-clif.toml").read_text())
    doc["training"]["progress"] = False
    doc["clif"]["cfl"] = 0.9
    if quick:
        doc["training"].update(steps=10, log_every=5, checkpoint_every=10)
    return doc


def _point(disc, broadcast: float, cfl: float, ref_steps: int) -> dict:
    """Roll the trained solver out once at one broadcast step; the record of that point."""
    sol, pb = disc.solver, disc.pb
    sol.set_broadcast(broadcast * pb.scale())
    t0 = time.perf_counter()
    s = disc.evaluate()
    en, sp = s["energy"], s["spikes_per_step"]
    ref = en["float_fv_pj"] * ref_steps
    ref_c = en["float_fv_compute_pj"] * ref_steps
    floor = sol.energy_per_step(sp["quanta_moved_mean"], sp["neurons_fired_mean"],
                                evaluated=0.0)  # the same spikes, no flux evaluation
    return {"cfl": cfl, "broadcast": broadcast, "quantum": s["quantum"], "dt": s["dt"],
            "rollout_steps": s["rollout_steps"], "rel_l2": s["rel_l2"],
            "rel_l2_max": s["rel_l2_max"], "mass_drift": s["mass_drift"],
            "mass_drift_max": s["mass_drift_max"], "quanta_moved": sp["quanta_moved_mean"],
            "neurons_fired": sp["neurons_fired_mean"], "neurons": sp["neurons"],
            "activity": s["activity"]["mean"], "evaluations": sp["flux_evaluations_mean"],
            "evaluations_dense": en["evaluations_dense"], "broadcasts": sp["broadcasts_mean"],
            "spiking_pj": en["spiking_pj"], "float_fv_pj": en["float_fv_pj"],
            "ratio": en["ratio"], "ratio_compute": en["ratio_compute"],
            "floor": floor["ratio"], "floor_compute": floor["ratio_compute"],
            "per_time_ratio": en["spiking_pj"] * s["rollout_steps"] / ref,
            "per_time_ratio_compute": en["spiking_compute_pj"] * s["rollout_steps"] / ref_c,
            "rollout_s": time.perf_counter() - t0}


def run_resolution(doc: dict, resolution: float, cfls: list[float], broadcasts: list[float],
                   workdir: Path) -> list[dict]:
    """Train at one resolution (CFL 0.9), roll out at every (cfl, broadcast) pair."""
    from coupling.config import parse_clif_config  # deferred: loads DOLFINx, torch

    # deferred: loads DOLFINx, torch, Gmsh, SciPy
    # deferred: loads DOLFINx, torch, Gmsh, SciPy
    from coupling.runs.clif import build_clif, load_trained_clif, train_clif
    from meshes.fenics import MPI  # deferred: loads DOLFINx

    comm = MPI.COMM_SELF
    doc = copy.deepcopy(doc)
    doc["clif"]["resolution"] = resolution
    t0 = time.perf_counter()
    run = workdir / f"res{resolution:g}"
    res = train_clif(parse_clif_config(doc), run, comm, resume=False)
    train_s = time.perf_counter() - t0
    net, base = load_trained_clif(run, comm)
    ref_steps = base.pb.steps  # the float FV's own step count (CFL 0.9)
    out = []
    for cfl in cfls:
        disc = base
        if cfl != 0.9:
            d2 = copy.deepcopy(doc)
            d2["clif"]["cfl"] = cfl
            net2, disc = build_clif(parse_clif_config(d2), comm)
            net2.load_state_dict(net.state_dict())
        for b in broadcasts:
            rec = {"resolution": resolution, "train_s": train_s, "train_steps": res.step,
                   **_point(disc, b, cfl, ref_steps)}
            out.append(rec)
            print(f"pisnn_sweep: R {resolution:g} cfl {cfl} b {b}: rel. L2 "
                  f"{rec['rel_l2']:.3%}, drift {rec['mass_drift']}, {rec['ratio']:.3f}x "
                  f"per step ({rec['ratio_compute']:.3f}x compute-only), "
                  f"{rec['per_time_ratio']:.3f}x per time", file=sys.stderr, flush=True)
    return out


def best(doc: dict, per_time: bool = False) -> dict | None:
    """The cheapest point (per step, or per simulated time) within the error target and
    with zero drift, or None."""
    key = "per_time_ratio" if per_time else "ratio"
    ok = [r for r in doc["records"] if r["rel_l2"] is not None
          and r["rel_l2"] <= doc["target_error"] and r["mass_drift"] == 0
          and r["mass_drift_max"] == 0]
    return min(ok, key=lambda r: r[key]) if ok else None


def verdict(doc: dict) -> list[str]:
    """The target lines of the record: met or missed, by how much, and what bounds it."""
    b, bt = best(doc), best(doc, per_time=True)
    err, tr = doc["target_error"], TARGET_RATIO
    if b is None:
        return [f"- **Target missed**: no point reaches ≤ {err:.0%} error with 0 drift."]
    at = lambda r: (f"R = {r['resolution']:g}, CFL {r['cfl']}, broadcast {r['broadcast']}: "  # noqa: E731
                    f"{r['rel_l2']:.2%}, {r['ratio']:.3f}× per step ({r['ratio_compute']:.3f}× "
                    f"compute-only), {r['per_time_ratio']:.3f}× per simulated time")
    b9 = best({**doc, "records": [r for r in doc["records"] if r["cfl"] == 0.9]})
    met = b["ratio"] <= tr
    word = "met" if met else "missed"
    if met and (b9 is None or b9["ratio"] > tr):
        word = (f"met per step only at CFL {b['cfl']} (both updates at that Δt); missed at "
                f"CFL 0.9" + ("" if bt["per_time_ratio"] <= tr else " and per simulated time"))
    lines = [f"- Target (≤ {tr}× per step, 0 drift, ≤ {err:.0%}): **{word}** — cheapest "
             f"point {at(b)}."]
    if b9 is not None:
        lines.append(f"- At the float FV's own step (CFL 0.9): {at(b9)}; "
                     + ("within" if b9["ratio"] <= tr else
                        f"{b9['ratio'] - tr:.3f} above") + " the target.")
    lines.append(f"- Per simulated time (vs the float FV at CFL 0.9, the same horizon): "
                 f"cheapest {at(bt)}" + ("." if bt["per_time_ratio"] <= tr else
                                         f"; {bt['per_time_ratio'] - tr:.3f} above {tr}×."))
    return lines


def bounds(doc: dict) -> list[str]:
    """What bounds the per-step ratio, from the records: the share of facets that still
    re-evaluate F with send-on-delta at CFL 0.9, and the floor without any evaluation."""
    lazy = [r for r in doc["records"] if r["cfl"] == 0.9 and r["broadcast"] > 0]
    if not lazy:
        return []
    pct = lambda r: f"b {r['broadcast']:g} {r['evaluations'] / r['evaluations_dense']:.0%}"  # noqa: E731
    share = "; ".join(f"R {res:g}: " + ", ".join(pct(r) for r in lazy if r["resolution"] == res)
                      for res in sorted({r["resolution"] for r in lazy}))
    lines = [f"- What bounds it: the share of facets that re-evaluate F per step at CFL 0.9 "
             f"({share}). It falls with the broadcast step and then levels off: the stale "
             "values drive a limit cycle (a cell's imbalance grows with its offset from its "
             "last broadcast, so it re-broadcasts after about one diffusion time h²/k of its "
             "cell, i.e. every few steps where Δt sits near its stability bound in every cell, "
             "as on a uniform grid), while a larger step costs accuracy. The per-step ratio ≈ "
             "that share, since F is almost all of the float FV step."]
    if all("floor" in r for r in lazy):
        lines.append(f"- Floor with no evaluation at all (membranes, trunc tests, spikes): "
                     f"{min(r['floor'] for r in lazy):.4f}× full, "
                     f"{min(r['floor_compute'] for r in lazy):.4f}× compute-only.")
    small = [r for r in doc["records"] if r["cfl"] < 0.9 and r["broadcast"] > 0]
    if small:
        r = min(small, key=lambda r: r["ratio"])
        lines.append(f"- A smaller step (CFL {r['cfl']}) spreads the same broadcasts over more "
                     f"steps: {r['ratio']:.3f}× per step, but {r['per_time_ratio']:.3f}× per "
                     "simulated time against the float FV at its own step.")
    return lines


def markdown(doc: dict) -> str:
    """The sweep as Markdown: settings, target verdict, one row per point."""
    lines = [f"# PISNN energy sweep: {doc['problem']}{' (quick)' if doc['quick'] else ''}", "",
             f"- command: `{doc['command']}`", f"- uptime at start: `{doc['uptime']}`",
             f"- commit `{doc['git']['commit']}`; total {doc['total_s']:.0f} s; config "
             f"`examples/{doc['problem']}-clif.toml` ({doc['train_steps']} training steps)",
             "", "Energy per step of the spiking update (C-LIF, integer quanta, event-driven "
             "flux evaluation) over the float finite-volume update with the same flux network "
             "and Δt; full = compute + memory, compute-only = the SNN papers' convention "
             "(spiking.CLIFSolver.energy_per_step). Per time = the spiking rollout over the "
             "float FV rollout at CFL 0.9 (its own stable step) to the same horizon. R: "
             "quantum resolution (q = R·u_s·min V); broadcast: send-on-delta step / u_s.", "",
             *verdict(doc), *bounds(doc), "",
             "| R | CFL | broadcast | rel. L2 | drift (max) | quanta moved / step | fired / "
             "step (activity) | F evals / step | per step full | compute-only | per time "
             "full | compute-only |", "|" + "---|" * 12]
    for r in doc["records"]:
        lines.append(
            f"| {r['resolution']:g} | {r['cfl']} | {r['broadcast']} | {r['rel_l2']:.2%} | "
            f"{r['mass_drift']} ({r['mass_drift_max']}) | {r['quanta_moved']:.4g} | "
            f"{r['neurons_fired']:.4g} ({r['activity']:.1%}) | {r['evaluations']:.4g} of "
            f"{r['evaluations_dense']} | {r['ratio']:.3f} | {r['ratio_compute']:.3f} | "
            f"{r['per_time_ratio']:.3f} | {r['per_time_ratio_compute']:.3f} |")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    """Error vs energy per step (both conventions), one marker per CFL, the target box."""
    import matplotlib  # deferred: loads matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: loads matplotlib

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    recs = [r for r in doc["records"] if r["rel_l2"] is not None]
    marks = {0.9: "o", 0.3: "s"}
    for ax, key, name in ((axes[0], "ratio", "full"), (axes[1], "ratio_compute", "compute-only")):
        for r in recs:
            ax.scatter(r[key], r["rel_l2"], s=25, marker=marks.get(r["cfl"], "^"),
                       c=f"C{sorted({x['resolution'] for x in recs}).index(r['resolution'])}")
            ax.annotate(f"b{r['broadcast']:g}/c{r['cfl']:g}", (r[key], r["rel_l2"]), fontsize=6)
        ax.axvline(TARGET_RATIO, color="g", lw=0.8)
        ax.axhline(doc["target_error"], color="g", lw=0.8, label="target")
        ax.set_xlabel(f"energy per step / float FV ({name})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("relative L2 error (rollout end)")
    fig.suptitle(f"PISNN sweep: {doc['problem']} (colour: resolution; o CFL 0.9, s CFL 0.3)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(problem: str, *, quick: bool = False, out: Path | None = None, command: str = "",
          resolutions: list[float] | None = None, cfls: list[float] | None = None,
          broadcasts: list[float] | None = None) -> dict:
    """Run the sweep on PROBLEM and write JSON, Markdown and PNG; returns the document."""

    t0 = time.perf_counter()
    doc_cfg = load(problem, quick)
    grid = QUICK if quick else GRIDS[problem]
    rs, cs, bs = (given or default for given, default in
                  zip((resolutions, cfls, broadcasts), grid, strict=True))
    uptime = os.popen("uptime").read().strip()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in rs:
            records += run_resolution(doc_cfg, r, cs, bs, Path(tmp))
    doc = {"problem": problem, "quick": quick, "command": command, "uptime": uptime,
           "git": git_info(), "machine": machine(),
           "train_steps": doc_cfg["training"]["steps"],
           "target_error": TARGET_ERROR[problem], "target_ratio": TARGET_RATIO,
           "records": records, "total_s": time.perf_counter() - t0}
    doc["best"] = {"per_step": best(doc), "per_time": best(doc, per_time=True)}
    out = Path(out or RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"pisnn-sweep-{problem}{'-quick' if quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    stem.with_suffix(".md").write_text(markdown(doc))
    plot(doc, stem.with_suffix(".png"))
    doc["paths"] = [str(stem.with_suffix(s)) for s in (".json", ".md", ".png")]
    return doc


def main(argv: list[str] | None = None) -> int:
    """Command line of the sweep (errors: one line)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.pisnn_sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("problem")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path)
    p.add_argument("--resolution", type=float, action="append")
    p.add_argument("--cfl", type=float, action="append")
    p.add_argument("--broadcast", type=float, action="append")
    a = p.parse_args(argv)
    cmd = "python -m benchmarks.pisnn_sweep " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])

    try:
        doc = sweep(a.problem, quick=a.quick, out=a.out, command=cmd, resolutions=a.resolution,
                    cfls=a.cfl, broadcasts=a.broadcast)
    except (BenchError, ConfigError, ValueError) as err:
        print(f"pisnn_sweep: {err}", file=sys.stderr)
        return 2
    print(f"pisnn_sweep: {len(doc['records'])} points -> {', '.join(doc['paths'])}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
