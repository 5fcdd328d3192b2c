"""The results of `neurofem bench` as files: the JSON document and its Markdown tables.

Every number of the Markdown page is formatted from the JSON document (nothing is
measured here): the main table (one row per cell), the problems, the ANN→SNN conversion
against the number of time steps, PISNN's conservation / spikes / energy per step, the
apparent Young's modulus of problem 6 against the Hashin–Shtrikman bounds, the off-node
accuracy of the network cells (errors vs FEM between the nodes, beside the nodal ones), the
lift-alone check of every cell whose boundary map lifts the data, the rivals per problem
(the FEM solve of the problem's mesh and the spiking circuit beside the spiking network
cells, time and energy per answer) and the strong-scaling table.
"""

from __future__ import annotations

import json
from pathlib import Path

from .grid import CONVERSION_STEPS


def write_results(doc: dict, out: Path, stem: str) -> list[Path]:
    """Write ``out/<stem>.json`` and ``out/<stem>.md``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    md_path.write_text(markdown(doc))
    return [json_path, md_path]


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def _num(v, spec=".3g") -> str:
    return "–" if v is None else format(v, spec)


def _secs(v) -> str:
    return "not reached" if v is None else f"{v:.1f} s"


def cell_row(r: dict) -> str:
    """One Markdown table row of a record."""
    head = f"| {r['number']} {r['problem']} | {r['label']} "
    if r["status"] != "ok":
        return head + f"| {r['status']}: {r.get('reason', '')} |" + " |" * 9
    act = r.get("activity")
    mean = _pct(act["mean"]) if act else "– (ANN)"
    layers = " / ".join(f"{100 * v:.0f}" for v in act["layers"].values()) if act else "–"
    tt = r.get("time_to", {})
    stress = _pct(r.get("stress_rel")) if "stress_rel" in r else "–"
    energy = _num(r.get("energy_ratio"))
    if r.get("energy_ratio_compute") is not None:  # full / compute-only
        energy += f" / {_num(r['energy_ratio_compute'])}"
    energy += " (vs float FV)" if "energy_baseline" in r else ""
    return (head + f"| {_pct(r['rel_l2'])} | {stress} | {mean} | {layers} | "
            f"{energy} | {r['train_s']:.1f} s | "
            f"{_secs(tt.get('0.05'))} | {_secs(tt.get('0.01'))} | "
            f"{r['peak_mem_mb']:.0f} MiB | {r['ranks']} |")


def _header(doc: dict) -> list[str]:
    m, g = doc["machine"], doc["git"]
    return [f"# neurofem benchmark{' (quick)' if doc['quick'] else ''}", "",
            f"- command: `{doc['command']}`",
            f"- commit: `{g['commit']}`{' (work tree modified)' if g['dirty'] else ''}",
            f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}; "
            f"python {m['versions']['python']}, torch {m['versions']['torch']}, dolfinx "
            f"{m['versions']['dolfinx']}, deepxde {m['versions']['deepxde'] or 'absent'}; "
            f"1 thread per rank; {m['note']} (1-min load at start "
            f"{_num(m['load_avg_1min_at_start'])})",
            f"- started {doc['started']}, total {doc['total_s']:.0f} s", "",
            "Relative L2 error against the reference (integral weights), stress error "
            "‖σ(u) − σ(u_FEM)‖/‖σ(u_FEM)‖ for problem 6, spiking activity (mean; per hidden "
            "layer in %), energy per inference point relative to the equal-shape ANN "
            "(`spiking.energy_report`, 45 nm prices; full = compute + memory / compute-only, "
            "the SNN papers' convention), training wall time, wall time to reach "
            "5% and 1% error (first logged step), peak resident memory (max over ranks).", "",
            "| problem | method | rel. L2 | stress err. | activity | per layer % | energy "
            "vs ANN full / compute | train | to 5% | to 1% | peak mem | ranks |",
            "|" + "---|" * 12]


def _problems(doc: dict) -> list[str]:
    lines = ["", "## Problems", ""]
    for name, p in doc["problems"].items():
        budget = [f"{p['steps']} Adam steps per network method"] if "steps" in p else []
        if "clif_example" in p:
            budget.append(f"clif: `{p['clif_example']}`, {p['clif_steps']} Adam steps on "
                          "rollout windows")
        lines.append(f"{p['number']}. **{name}**: {p['title']} (`{p['example']}`; reference: "
                     f"{p['reference']}; {'; '.join(budget)})")
    return lines


def _method_table(doc: dict, method: str, header: list[str], row) -> list[str]:
    """``header`` then ``row(record)`` per successful record of ``method``; none: no section."""
    records = [r for r in doc["records"] if r["method"] == method and r["status"] == "ok"]
    return header + [row(r) for r in records] if records else []


def _conversion_row(r: dict) -> str:
    """One problem's ReLU ANN error, then its converted SNN's per T (energy ratio in brackets)."""
    cells = " | ".join(f"{_pct(r['conversion'][str(t)]['rel_l2'])} (E×"
                       f"{r['conversion'][str(t)]['energy_ratio']:.2f})"
                       for t in CONVERSION_STEPS)
    return f"| {r['problem']} | {_pct(r['ann_rel_l2'])} | {cells} |"


def _conversion(doc: dict) -> list[str]:
    return _method_table(doc, "ann2snn", [
        "", "## ANN→SNN conversion: error vs time steps T", "",
        "| problem | ReLU ANN | " + " | ".join(f"T = {t}" for t in CONVERSION_STEPS) + " |",
        "|" + "---|" * (2 + len(CONVERSION_STEPS))], _conversion_row)


def _clif_row(r: dict) -> str:
    """One problem's PISNN rollout: errors, mass drift, spikes and energy per step."""
    sp, e = r["spikes_per_step"], r["energy_pj"]
    return (
        f"| {r['number']} {r['problem']} | {_pct(r['rel_l2'])} | "
        f"{'– (relaxation from 0)' if r.get('steady') else _pct(r['rel_l2_max'])}"
        f" | {r['mass_drift']} | {r['mass_drift_max']} | {r['total_quanta']} | "
        f"{sp['quanta_moved_mean']:.4g} (max {sp['quanta_moved_max']}) | "
        f"{sp['neurons_fired_mean']:.4g} of {sp['neurons']} | {e['snn']:.4g} vs "
        f"{e['float_fv']:.4g} pJ ({r['energy_ratio']:.3g}×) | {r['rollout_steps']} | "
        f"{r['train_s']:.1f} s |")


def _clif(doc: dict) -> list[str]:
    return _method_table(doc, "clif", [
        "", "## PISNN (C-LIF + CFQ): conservation, spikes and energy per step", "",
        "Integer rollout from t = 0 with the trained flux network (steady problems: "
        "relaxation in pseudo-time). Mass drift = Σ quanta − initial − boundary − "
        "source quanta, final and max |·| over the rollout; spikes and energy are "
        "means per rollout step; energy compares the spiking update with a float "
        "finite-volume update of the same flux network (45 nm prices).", "",
        "| problem | rel. L2 (end) | max over rollout | mass drift (quanta) | "
        "max drift | total quanta | quanta moved / step | neurons fired / step | "
        "energy / step: spiking vs float FV | rollout steps | train |",
        "|" + "---|" * 11], _clif_row)


def _young(doc: dict) -> list[str]:
    young = [r for r in doc["records"] if "young" in r]
    if not young:
        return []
    hs = young[0]["young"]["hashin_shtrikman"]
    fractions = ", ".join(f"{k} {100 * v:.1f}%" for k, v in hs["fractions"].items())
    lines = ["", "## Problem 6: apparent Young's modulus E = ∫σ_xx / ∫ε_xx (GPa)", "",
             f"FEM: {young[0]['young']['fem']:.4g}; Hashin–Shtrikman bounds "
             f"[{hs['lower']:.4g}, {hs['upper']:.4g}] (measured inclusion fraction "
             f"{fractions})", "", "| method | E network | vs FEM | energy-norm err. | "
             "von Mises err. |", "|---|---|---|---|---|"]
    for r in young:
        y = r["young"]
        lines.append(f"| {r['label']} | {y['network']:.4g} | "
                     f"{100 * (y['network'] / y['fem'] - 1):+.2f}% | {_pct(r['energy_rel'])} "
                     f"| {_pct(r['von_mises_rel'])} |")
    return lines


def offnode_row(r: dict) -> str:
    """One cell's off-node errors: raw network (all / boundary / interior cells), its ratio to
    the nodal error, the P1 interpolant of its nodal values, the worst deviation."""
    o = r["offnode"]
    nodal, off = o.get("nodal_rel_l2"), o.get("rel_l2")
    ratio = f"{off / nodal:.2f}×" if off is not None and nodal else "–"
    return (f"| {r['number']} {r['problem']} | {r['label']} | {_pct(nodal)} | {_pct(off)} | "
            f"{ratio} | {_pct(o.get('boundary_cells'))} | {_pct(o.get('interior_cells'))} | "
            f"{_pct(o.get('interpolant_rel_l2'))} | {_pct(o.get('max_of_range'))} |")


def _offnode(doc: dict) -> list[str]:
    records = [r for r in doc["records"] if r["status"] == "ok" and r.get("offnode")]
    if not records:
        return []
    return ["", "## Off-node accuracy: errors vs FEM between the nodes", "",
            "Relative L2 vs the FE reference at degree-3 quadrature points inside every cell "
            "(the raw network with its boundary map), over all cells, cells touching the "
            "boundary and interior cells; its ratio to the nodal error of the same network; "
            "the P1 interpolant of its nodal values at the same points; the worst pointwise "
            "deviation as a share of the reference's range. Targets: off-node ≤ 1.5× nodal, "
            "worst ≤ 2% of the range.", "",
            "| problem | method | nodal | off-node | × nodal | boundary cells | interior cells "
            "| interpolant | worst / range |", "|" + "---|" * 9] + [offnode_row(r)
                                                                  for r in records]


#: a trained network must beat the lift it is added to by this factor to count as learned
LIFT_FACTOR = 5.0


def lift_row(r: dict) -> str:
    """One cell's nodal error beside its lift alone (N = 0) and the verdict."""
    net, lift = r["rel_l2"], r["lift_rel_l2"]
    ratio = lift / net if net else float("inf")
    verdict = (f"network ≥ {LIFT_FACTOR:g}× better than its lift" if ratio >= LIFT_FACTOR
               else "**the lift did the work**" if ratio < 2 else
               f"network only {ratio:.1f}× better than its lift (< {LIFT_FACTOR:g}×)")
    return (f"| {r['number']} {r['problem']} | {r['label']} | {r['boundary']} | {_pct(net)} | "
            f"{_pct(lift)} | {ratio:.1f}× | {verdict} |")


def _lift(doc: dict) -> list[str]:
    records = [r for r in doc["records"]
               if r["status"] == "ok" and r.get("lift_rel_l2") is not None]
    if not records:
        return []
    return ["", "## Lift alone: what the network adds to its boundary lift", "",
            "A hard or exact boundary map writes u = g̃ + D·N: the lift g̃ of the Dirichlet "
            "data (PDE-free: a distance-weighted transfinite interpolation) plus the network "
            "N times a distance D. The lift alone (N = 0) is scored against the same "
            "reference at the same nodes; a network that is not at least "
            f"{LIFT_FACTOR:g}× better than it has learned little beyond the boundary data.", "",
            "| problem | method | boundary | network | lift alone | lift / network | verdict |",
            "|" + "---|" * 7] + [lift_row(r) for r in records]


def _uj(v) -> str:
    return "–" if v is None else f"{v:.3g}"


def _rival_line(problem: str, method: str, acc: str, time: str, offline: str, uj, fem_uj,
                neuro, note: str) -> str:
    times = f"{uj / fem_uj:.3g}×" if uj is not None and fem_uj else "–"
    return (f"| {problem} | {method} | {acc} | {time} | {offline} | {_uj(uj)} | {times} | "
            f"{_uj(neuro)} | {note} |")


def rival_rows(doc: dict, name: str) -> list[str]:
    """One problem's rivals block: the FEM solve (PETSc's log; MUMPS' count), the circuit
    cell and the spiking network cells, energy per answer (every node) in µJ."""
    fem = (doc.get("rivals") or {}).get(name)
    recs = [r for r in doc["records"] if r["problem"] == name and r["status"] == "ok"]
    if not fem or fem["status"] != "ok":
        reason = fem.get("reason", "") if fem else "not measured"
        return [f"| {name} | FEM solve | failed: {reason} |" + " |" * 6] if fem else []
    p = f"{doc['problems'][name]['number']} {name}"
    nodes, base = fem["nodes"], fem["full_uj"]
    out = [_rival_line(p, "FEM solve (PETSc log)", "reference", f"{fem['time_s']:.3g} s", "–",
                       base, base, None, f"{fem['solver']}, {fem['dofs']:.0f} dofs, "
                       f"{fem['flops']:.3g} flops, {fem['nnz']:.3g} nnz")]
    if fem.get("mumps_full_uj") is not None:
        out.append(_rival_line(p, "FEM solve (MUMPS count)", "reference",
                               f"{fem['time_s']:.3g} s", "–", fem["mumps_full_uj"], base, None,
                               f"{fem['mumps_flops']:.3g} flops"))
    for r in recs:
        if r["method"] == "circuit":
            out.append(_rival_line(p, r["label"], _pct(r["rel_l2"]), f"{r['train_s']:.3g} s",
                                   "none", r["energy_pj"] * 1e-6, base,
                                   r["neuromorphic_pj"] * 1e-6, f"{r['steps']} steps (setup + "
                                   "steps; whole run)"))
        elif isinstance(r.get("energy_pj"), dict) and "ann" in r["energy_pj"]:
            e = r["energy_pj"]
            out.append(_rival_line(p, r["label"], _pct(r["rel_l2"]), "not timed",
                                   f"{r['train_s']:.1f} s", e["snn"] * nodes * 1e-6, base, None,
                                   f"equal ANN {_uj(e['ann'] * nodes * 1e-6)} µJ; "
                                   f"{nodes} nodes × per point"))
    return out


def _rivals(doc: dict) -> list[str]:
    rows = [row for name in doc["problems"] for row in rival_rows(doc, name)]
    if not rows:
        return []
    prov = doc.get("rivals_provenance")
    when = (f"FEM solves measured after the grid, on the grid's meshes, by `{prov['command']}` "
            f"(`uptime`: {prov['uptime']})" if prov else "FEM solves measured in each "
            "problem's worker, on the cells' mesh")
    return ["", "## Rivals: the FEM solve and the spiking circuit, per answer", "",
            "One answer is the field at every node. FEM: assembly + solve, best wall time of "
            "two, priced from PETSc's flop log (FFCx kernels not in it) and memory words from "
            "nnz (`fem.flops`); MUMPS' own elimination count beside it. Energies in µJ per "
            "answer at 45 nm full (Horowitz 2014, fp32); the circuit's whole run also on "
            "Loihi 2018 prices (pre-silicon lower bound); a network cell's energy per point "
            "times the nodes. Network time per answer is not timed by the grid (its training "
            f"is the offline cost). {when}.", "",
            "| problem | method | rel. L2 | time per answer | offline | 45 nm full µJ | × FEM "
            "(PETSc log) | neuromorphic µJ | note |", "|" + "---|" * 9] + rows


def _scaling(doc: dict) -> list[str]:
    if not doc["scaling"]:
        return []
    lines = ["", "## Strong scaling, problem 6 (VSN + galerkin, same total points)", "",
             "| ranks | points | epochs/s | speedup | parallel efficiency | train | to 5% | "
             "to 1% | rel. L2 | peak mem per rank |", "|" + "---|" * 10]
    for s in doc["scaling"]:
        mem = " / ".join(f"{v:.0f}" for v in s["peak_mem_mb_per_rank"])
        lines.append(f"| {s['ranks']} | {s['points']} | {s['epochs_per_s']:.2f} | "
                     f"{s['speedup']:.2f}× | {100 * s['efficiency']:.0f}% | "
                     f"{s['train_s']:.1f} s | {_secs(s['time_to'].get('0.05'))} | "
                     f"{_secs(s['time_to'].get('0.01'))} | {_pct(s['rel_l2'])} | {mem} MiB |")
    return lines


def markdown(doc: dict) -> str:
    """The result table(s) as Markdown (every number from `doc`)."""
    lines = _header(doc) + [cell_row(r) for r in doc["records"]]
    for section in (_rivals, _problems, _conversion, _clif, _young, _offnode, _lift,
                    _scaling):
        lines += section(doc)
    return "\n".join(lines) + "\n"
