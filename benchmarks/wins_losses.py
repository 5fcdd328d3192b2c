"""Where the spiking network wins and where it loses: one table from the recorded rivals.

    python -m benchmarks.wins_losses            # writes the table and the README section
    python -m benchmarks.wins_losses --check    # exit 1 if either differs from the records

Every cell comes from a record in benchmarks/results/ (:mod:`benchmarks.rivals` rows inside
``parametric-*.json``, ``rivals-demo-rve.json``, and the spiking circuit's
``circuit-rve.json`` of :mod:`benchmarks.circuit`): per problem, the spiking network's
accuracy, time and energy per answer beside the best rival's (FEM solve, reduced basis,
equal ANN), and the offline cost; then the training-free spiking circuit on the demo RVE
(cold and warm start from the trained network) against the FEM solve. The table is written to
``benchmarks/results/wins-and-losses.md`` and into README.md between the marker lines
``<!-- wins-losses:start -->`` and ``<!-- wins-losses:end -->`` (appended with its heading
if the markers are absent).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TABLE = RESULTS / "wins-and-losses.md"
START, END = "<!-- wins-losses:start -->", "<!-- wins-losses:end -->"
HEADING = "## Where the spiking network wins and where it loses"
COMMAND = "python -m benchmarks.wins_losses"
# (label, record, kind): the problems of the table
SOURCES = (("demo RVE (one problem)", "rivals-demo-rve.json", "single"),
           ("parametric RVE", "parametric-rve.json", "parametric"),
           ("parametric Poisson", "parametric-poisson.json", "parametric"))
# the spiking circuit: its record, the rivals record of the same mesh, the target it answers
CIRCUIT = ("demo RVE: spiking circuit (no training)", "circuit-rve.json", "rivals-demo-rve.json")
CIRCUIT_TARGET = "0.001"


def _pct(v: float) -> str:
    return f"{100 * v:.3g}%"


def _ms(v: float) -> str:
    return f"{1e3 * v:.3g} ms"


def _uj(v: float) -> str:
    return f"{v:.3g} µJ"


def _rivals(rows: list[dict], accuracy: float) -> list[dict]:
    """FEM and ROM rows at least as accurate as the network (FEM: the reference, error 0)."""
    return [r for r in rows if r["method"].startswith("FEM")
            or (r["method"].startswith("ROM") and r["accuracy"] <= accuracy)]


def _line(label: str, measure: str, ours: str, rival: str, wins: bool) -> str:
    return f"| {label} | {measure} | {ours} | {rival} | {'**wins**' if wins else 'loses'} |"


def _accuracy_rival(rows: list[dict], net: dict) -> tuple[str, float]:
    """The ROM with the fewest snapshots at least as accurate (else the most accurate ROM),
    or the FEM reference when there is no ROM."""
    roms = [r for r in rows if r["method"].startswith("ROM")]
    if not roms:
        return "FEM solve: exact (the reference)", 0.0
    good = [r for r in roms if r["accuracy"] <= net["accuracy"]]
    r = good[0] if good else min(roms, key=lambda r: r["accuracy"])
    return f"{r['method']}: {_pct(r['accuracy'])}", r["accuracy"]


def problem_lines(label: str, doc: dict, kind: str) -> list[str]:
    """The table's lines of one problem (accuracy, time, energy, equal ANN, offline cost);
    time and energy against the cheapest rival at least as accurate as the network."""
    riv = doc.get("rivals", doc) if kind == "parametric" else doc
    rows = riv["prices"]
    net = next(r for r in rows if r["method"] == "spiking network")
    ann = next(r for r in rows if r["method"] == "equal ANN")
    eligible = _rivals(rows, net["accuracy"])
    name, acc = _accuracy_rival(rows, net)
    out = [_line(label, "field error (median rel. L2)", _pct(net["accuracy"]), name,
                 net["accuracy"] < acc)]
    if net["time_s"] is not None:
        t = min(eligible, key=lambda r: r["time_s"])
        out.append(_line(label, "time per answer", _ms(net["time_s"]),
                         f"{t['method']}: {_ms(t['time_s'])}", net["time_s"] < t["time_s"]))
    e = min(eligible, key=lambda r: r["full_uj"])
    out.append(_line(label, "energy per answer: 45 nm full / neuromorphic",
                     f"{_uj(net['full_uj'])} / {_uj(net['neuromorphic_uj'])}",
                     f"{e['method']}: {_uj(e['full_uj'])} (45 nm full)",
                     min(net["full_uj"], net["neuromorphic_uj"]) < e["full_uj"]))
    out.append(_line(label, "energy per answer vs the equal ANN (45 nm full)",
                     _uj(net["full_uj"]), f"equal ANN: {_uj(ann['full_uj'])}",
                     net["full_uj"] < ann["full_uj"]))
    if kind == "parametric":
        train = riv["network"]["train_s"]
        roms = [r for r in riv["rom"]["rows"] if r["errors"]["median"] <= net["accuracy"]]
        if roms:
            rom = min(roms, key=lambda r: r["offline_s"])
            out.append(_line(label, "offline cost (training vs snapshots + POD + projection)",
                             f"{train:.3g} s", f"ROM N={rom.get('label', rom['snapshots'])}: "
                             f"{rom['offline_s']:.3g} s", train < rom["offline_s"]))
    return out


def _setup_pj(system: dict) -> dict:
    """The circuit's setup (Lanczos products with K) priced like a FEM flop count."""
    from spiking.prices import flop_ops, price  # deferred: loads torch

    k = system["setup_matvecs"]
    return price(flop_ops(2.0 * k * system["nnz"], 3.0 * k * system["nnz"], 2.0 * k *
                          system["dofs"]))


def circuit_answer(doc: dict, target: str = CIRCUIT_TARGET) -> dict:
    """Time (s) and energy (µJ: full, compute, neuromorphic) to `target` vs FEM, cold and
    warm (warm: with the network's inference); setup (Lanczos) in both."""
    setup, net = _setup_pj(doc["system"]), doc["network"]
    out = {}
    for start in ("cold", "warm"):
        run = doc[start]
        e = run["energy_to"][target]
        add = (net["wall_s"], net["pj"], net["compute_pj"], net["neuromorphic_pj"]) \
            if start == "warm" else (0.0, 0.0, 0.0, 0.0)
        out[start] = {
            "step": run["reached"][target]["step"], "final": run["final"]["rel_fem"],
            "time_s": doc["system"]["setup_s"] + run["reached"][target]["step"]
            * run["s_per_step"] + add[0],
            "full_uj": 1e-6 * (e["total"]["pj"] + setup["full_pj"] + add[1]),
            "compute_uj": 1e-6 * (e["total"]["compute_pj"] + setup["compute_pj"] + add[2]),
            "neuromorphic_uj": 1e-6 * (e["neuromorphic_pj"] + setup["full_pj"] + add[3])}
    return out


def circuit_lines(label: str, doc: dict, rivals: dict) -> list[str]:
    """The circuit's lines: accuracy, time and energy per answer to the target vs FEM."""
    a, t = circuit_answer(doc), float(CIRCUIT_TARGET)
    c, w = a["cold"], a["warm"]
    fem = next(r for r in rivals["prices"] if r["method"] == "FEM solve (PETSc log)")
    best = min(c["full_uj"], w["full_uj"], c["neuromorphic_uj"], w["neuromorphic_uj"])
    return [
        _line(label, "error vs FEM (lumped-mass rel. L2), cold / warm start",
              f"{t:g} at step {c['step']} / {w['step']} (final {c['final']:.3g} / "
              f"{w['final']:.3g})", "FEM solve: exact (the reference)", False),
        _line(label, f"time per answer to {t:g}, cold / warm (CPU simulation, with setup)",
              f"{_ms(c['time_s'])} / {_ms(w['time_s'])}",
              f"{fem['method']}: {_ms(fem['time_s'])}",
              min(c["time_s"], w["time_s"]) < fem["time_s"]),
        _line(label, f"energy per answer to {t:g}, cold / warm: 45 nm full; compute-only; "
              "neuromorphic", f"{_uj(c['full_uj'])} / {_uj(w['full_uj'])}; "
              f"{_uj(c['compute_uj'])} / {_uj(w['compute_uj'])}; "
              f"{_uj(c['neuromorphic_uj'])} / {_uj(w['neuromorphic_uj'])}",
              f"{fem['method']}: {_uj(fem['full_uj'])}; {_uj(fem['compute_uj'])} "
              "(compute-only)", best < fem["full_uj"])]


def circuit_note(doc: dict, rivals: dict) -> str:
    """Where the circuit wins and loses, in words from the records."""
    a, t = circuit_answer(doc), float(CIRCUIT_TARGET)
    cold, warm = doc["cold"]["reached"][CIRCUIT_TARGET], doc["warm"]["reached"][CIRCUIT_TARGET]
    by = {r["method"]: r for r in rivals["prices"]}
    fem, mumps = by["FEM solve (PETSc log)"], by.get("FEM solve (MUMPS count)")
    text = (f"The spiking circuit needs no training and reaches {t:g} vs FEM, where the "
            f"trained network it starts from stops at {_pct(doc['network']['rel_fem'])} (same "
            f"norm); warm-started, {cold['synaptic'] / max(warm['synaptic'], 1):.3g}× fewer "
            f"synaptic events than cold. On this CPU it loses to the FEM solve in time, and "
            f"in energy by PETSc's count ({_uj(fem['full_uj'])})")
    if mumps:
        w = a["warm"]["full_uj"]
        text += (f"; by MUMPS' count ({_uj(mumps['full_uj'])}) the warm start with the "
                 f"network ({_uj(w)}) {'costs less' if w < mumps['full_uj'] else 'costs more'}")
    return text + ". Circuit energies include its setup (Lanczos products priced from nnz)."


def _circuit(results: Path) -> tuple[list[str], list[str]]:
    """The circuit's table lines and its note (none without its records)."""
    label, name, rivals_name = CIRCUIT
    paths = (results / name, results / rivals_name)
    if not all(p.exists() for p in paths):
        return [], [f"No record yet for: {', '.join(p.name for p in paths if not p.exists())}."]
    doc, rivals = (json.loads(p.read_text()) for p in paths)
    if doc["network"]["points"] != rivals["points"]:
        return [], [f"{name} and {rivals_name}: different meshes (nodes "
                    f"{doc['network']['points']} vs {rivals['points']}): no circuit lines."]
    return circuit_lines(label, doc, rivals), [circuit_note(doc, rivals)]


def table(results: Path = RESULTS) -> str:
    """The Markdown table from the records in `results` (every cell computed)."""
    lines = ["| problem | measure | spiking network (or circuit) | cheapest rival at least "
             "as accurate | spiking |",
             "|---|---|---|---|---|"]
    missing, mumps = [], []
    for label, name, kind in SOURCES:
        path = results / name
        if not path.exists():
            missing.append(name)
            continue
        doc = json.loads(path.read_text())
        lines += problem_lines(label, doc, kind)
        rows = (doc.get("rivals", doc) if kind == "parametric" else doc)["prices"]
        mumps += [f"{_uj(r['full_uj'])} ({label})" for r in rows
                  if r["method"] == "FEM solve (MUMPS count)"]
    circuit, circuit_notes = _circuit(results)
    lines += circuit
    notes = ["", f"Generated by `{COMMAND}` from the records in benchmarks/results/ "
             "(rivals rows: `python -m benchmarks.rivals`). Energies per answer (the field at "
             "every node for one problem): 45 nm = Horowitz (ISSCC 2014), fp32, compute + "
             "memory; neuromorphic = Loihi (Davies et al., IEEE Micro 2018), pre-silicon lower "
             "bound, for the spiking network and circuit only. FEM flops from PETSc's log. "
             "Circuit: `python -m benchmarks.circuit run` (circuit-rve.json)."]
    if mumps:
        notes.append(f"Priced with MUMPS' own elimination flop count instead of PETSc's log, "
                     f"the FEM solve costs {', '.join(mumps)} at 45 nm full.")
    notes += circuit_notes
    if missing:
        notes.append(f"No record yet for: {', '.join(missing)}.")
    return "\n".join(lines + notes) + "\n"


def readme_with(readme: str, body: str) -> str:
    """README text with `body` between the markers (the section appended if absent)."""
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        _, tail = rest.split(END, 1)
        return f"{head}{START}\n{body}{END}{tail}"
    return readme.rstrip("\n") + f"\n\n{HEADING}\n\n{START}\n{body}{END}\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, write nothing")
    args = ap.parse_args(argv)
    body = table()
    md = f"# Where the spiking network wins and where it loses\n\n{body}"
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    new_readme = readme_with(readme, body)
    if args.check:
        ok = TABLE.exists() and TABLE.read_text() == md and new_readme == readme
        print("up to date" if ok else f"stale: run `{COMMAND}`", file=sys.stderr)
        return 0 if ok else 1
    TABLE.write_text(md)
    readme_path.write_text(new_readme)
    print(f"wrote {TABLE} and README.md's section", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
