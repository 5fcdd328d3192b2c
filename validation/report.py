"""Reports of a run: summary.json, report.md and report.html (same tables, same numbers).

Every number in the tables is read from the summary dict that is also written as
summary.json, so the three files cannot disagree. Rank 0 alone writes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from fem.cache import atomic_write

from .export import readable
from .plots import layer_label
from .provenance import flag, header_rows


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every report table, formatted from the summary."""
    if summary.get("model") == "clif":
        return clif_tables(summary)
    out = []
    e = summary["errors"]
    rows = []
    for key, label in (("l2", "L2 (displacement / field)"), ("h1", "H1 seminorm"),
                       ("energy", "energy norm (strain energy)"), ("stress", "stress L2"),
                       ("von_mises", "von Mises L2")):
        if key in e:
            rows.append([label, _fmt(e[key]["absolute"]), _fmt(e[key]["relative"])]
                        + [_fmt(e[key]["phases"].get(p, {}).get("relative"))
                           for p in summary["mesh"]["phases"]])
    rows.append(["max (nodal)", _fmt(e["max"]["absolute"]), _fmt(e["max"]["relative"])]
                + ["–" for _ in summary["mesh"]["phases"]])
    out.append(("Errors of the network against FEM",
                ["quantity", "absolute", "relative"]
                + [f"relative ({p})" for p in summary["mesh"]["phases"]], rows))
    if summary.get("offnode"):
        out.append(offnode_table(summary["offnode"]))
    c = summary["conservation"]
    keys = [k for k in ("relative", "direct_relative", "force_relative", "moment_relative",
                        "local_l1_relative", "net_force", "boundary_flux", "sources")
            if k in c["fem"]]
    rows = [[k, _fmt(c["network"].get(k)), _fmt(c["fem"].get(k))] for k in keys]
    if "traction_jump" in c["fem"] and c["fem"]["traction_jump"].get("available"):
        rows.append(["interface traction jump (relative)",
                     _fmt(c["network"]["traction_jump"]["relative"]),
                     _fmt(c["fem"]["traction_jump"]["relative"])])
    for name, r in c["fem"].get("reactions", {}).items():
        rows.append([f"reaction on {name}", _fmt(c["network"]["reactions"][name]), _fmt(r)])
    out.append(("Conservation: network vs FEM", ["check", "network", "FEM"], rows))
    a = summary["activity"]
    rows = [[layer_label(name), _fmt(v)] for name, v in a["layers"].items()]
    rows.append(["mean", _fmt(a["mean"])])
    out.append(("Spiking activity per layer (fraction of neuron-steps with a spike)",
                ["layer", "activity"], rows))
    if summary.get("energy"):
        out.append(energy_table(summary["energy"]))
    m = summary["mesh"]
    rows = [["cells", _fmt(m["cells"])], ["vertices", _fmt(m["vertices"])],
            ["cell type", m["cell_type"]], ["h min / max", f"{m['h_min']:.3g} / {m['h_max']:.3g}"],
            ["ranks", _fmt(m["ranks"])]]
    rows += [[f"phase {p}", f"volume {_fmt(v['volume'])} ({v['fraction']:.2%})"]
             for p, v in m["phases"].items()]
    out.insert(0, ("Mesh", ["quantity", "value"], rows))
    out[1:1] = mechanics_tables(summary)
    t = summary["timings"]
    out.append(("Timings (s)", ["stage", "seconds"], [[k, _fmt(v)] for k, v in t.items()]))
    return out


def offnode_table(o: dict) -> tuple[str, list[str], list[list[str]]]:
    """Errors vs FEM between the nodes (quadrature points inside every cell), per reading."""
    labels = {"network": "raw network", "interpolant": "interpolant of nodal values",
              "lift": "lift alone (N = 0)"}
    rows = [[labels.get(k, k), _fmt(v["rel_l2"]), _fmt(v["boundary_cells"]),
             _fmt(v["interior_cells"]), _fmt(v["max_abs"]), _fmt(v["max_of_range"])]
            for k, v in o.items() if isinstance(v, dict)]
    rows.append(["nodal (for comparison)", _fmt(o.get("nodal_rel_l2")), "–", "–", "–", "–"])
    if o.get("lift_nodal_rel_l2") is not None:
        rows.append(["lift alone, nodal", _fmt(o["lift_nodal_rel_l2"]), "–", "–", "–", "–"])
    return (f"Off-node errors against FEM ({_fmt(o.get('points'))} quadrature points inside "
            "every cell)", ["reading", "relative L2", "boundary cells", "interior cells",
                            "worst deviation", "worst / range"], rows)


def energy_table(en: dict) -> tuple[str, list[str], list[list[str]]]:
    """Energy per layer in two conventions: full (compute + memory) and compute-only."""
    co, fl = en["compute_only"], en["floor"]
    rows = [[la["name"], _fmt(la["ann_pj"]), _fmt(la["snn_pj"]), _fmt(la["ann_compute_pj"]),
             _fmt(la["snn_compute_pj"]), _fmt(la.get("activity"))] for la in en["layers"]]
    rows.append(["total", _fmt(en["ann_pj"]), _fmt(en["snn_pj"]), _fmt(co["ann_pj"]),
                 _fmt(co["snn_pj"]), ""])
    rows.append(["ratio SNN / ANN", "", _fmt(en["ratio"]), "", _fmt(co["ratio"]), ""])
    rows.append(["floor (zero activity)", "", _fmt(fl["ratio"]), "", _fmt(fl["ratio_compute"]),
                 ""])
    return ("Energy per inference point (pJ) vs an ANN of the same shape: full (compute + "
            "memory) and compute-only (the SNN papers' convention)",
            ["layer", "ANN", "SNN", "ANN compute-only", "SNN compute-only", "activity"], rows)


def mechanics_tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """Apparent Young's modulus of network and FEM beside the Hashin–Shtrikman bounds,
    and the stress errors per phase (elasticity reports; none otherwise)."""
    m, e = summary.get("mechanics"), summary["errors"]
    out = []
    if m:
        unit = summary.get("units", {}).get("stress", "")
        unit = f" ({unit})" if unit else ""
        rows = [[f"network{unit}", _fmt(m["network"]), _within(m, "network")],
                [f"FEM{unit}", _fmt(m["fem"]), _within(m, "fem")]]
        if "hs_lower" in m:
            rows += [[f"Hashin–Shtrikman lower bound{unit}", _fmt(m["hs_lower"]), ""],
                     [f"Hashin–Shtrikman upper bound{unit}", _fmt(m["hs_upper"]), ""]]
        rows.append(["network vs FEM (relative)", _fmt(m["network_rel_diff"]), ""])
        out.append((f"Apparent Young's modulus along {m['axis']} "
                    "(∫σ_ii dx / ∫ε_ii dx) and the Hashin–Shtrikman bounds",
                    ["", "E", "within the bounds"], rows))
    if "stress" in e and e["stress"].get("phases"):
        rows = [[p, _fmt(e["stress"]["phases"][p].get("relative")),
                 _fmt(e["stress"]["phases"][p].get("absolute")),
                 _fmt(e.get("von_mises", {}).get("phases", {}).get(p, {}).get("relative")),
                 _fmt(e.get("energy", {}).get("phases", {}).get(p, {}).get("relative"))]
                for p in e["stress"]["phases"]]
        out.append(("Stress errors per phase (network vs FEM)",
                    ["phase", "stress rel. L2", "stress abs. L2", "von Mises rel. L2",
                     "energy norm rel."], rows))
    return out


def _within(m: dict, side: str) -> str:
    key = f"{side}_within_bounds"
    return "–" if key not in m else ("yes" if m[key] else "NO")


def run_table(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's header: how the run was trained, when, with what (if recorded)."""
    run = summary.get("run")
    return [("Run", ["setting", "value"], header_rows(run))] if run else []


def clif_tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The tables of a C-LIF (PISNN) run: geometry, accuracy, conservation in quanta,
    spikes, energy per step against a float finite-volume update, training settings."""
    g, r = summary["geometry"], summary["rollout"]
    kv = ["quantity", "value"]
    out = [("Geometry (cells are the control volumes)", kv,
            [[k, _fmt(v)] for k, v in g.items()])]
    out.append((f"Integer rollout against the {summary['reference']}", kv, [
        ["rel. L2 (final)", _fmt(r["rel_l2"])], ["rel. L2 (max over the rollout)",
                                                 _fmt(r["rel_l2_max"])],
        ["rollout steps", _fmt(r["rollout_steps"])], ["dt", _fmt(r["dt"])],
        ["t end", _fmt(r["t_end"])]]))
    out.append(("Conservation, in quanta (drift = N(T) − N(0) − boundary − source)", kv, [
        ["initial quanta", _fmt(r["initial_quanta"])],
        ["boundary quanta (net in)", _fmt(r["boundary_quanta"])],
        ["source quanta", _fmt(r["source_quanta"])],
        ["total quanta (final)", _fmt(r["total_quanta"])],
        ["mass drift (final)", _fmt(r["mass_drift"])],
        ["mass drift (max magnitude over the rollout)", _fmt(r["mass_drift_max"])],
        ["quantum (value of one quantum)", _fmt(r["quantum"])]]))
    sp = r["spikes_per_step"]
    out.append(("Spikes per step and activity of the interface neurons", kv, [
        ["quanta moved per step (mean)", _fmt(sp["quanta_moved_mean"])],
        ["quanta moved per step (max)", _fmt(sp["quanta_moved_max"])],
        ["neurons fired per step (mean)", _fmt(sp["neurons_fired_mean"])],
        ["neurons", _fmt(sp["neurons"])],
        ["activity (fraction of neurons firing per step)", _fmt(r["activity"]["mean"])]]))
    en = r["energy"]
    out.append((f"Energy of the spiking solver vs a float finite-volume update ({en['table']})",
                ["quantity", "spiking", "float FV", "ratio spiking / float FV"], [
                    ["per step (pJ)", _fmt(en["spiking_pj"]), _fmt(en["float_fv_pj"]),
                     _fmt(en["ratio"])],
                    ["per step, compute-only (pJ)", _fmt(en.get("spiking_compute_pj")),
                     _fmt(en.get("float_fv_compute_pj")), _fmt(en.get("ratio_compute"))],
                    ["whole rollout (µJ)", _fmt(en["rollout_spiking_uj"]),
                     _fmt(en["rollout_float_fv_uj"]), ""]]))
    out += [tuple(t) for t in summary.get("tables", ())]  # (title, header, rows) of the run
    tr = summary["training"]
    rows = [["steps trained", _fmt(summary["step"])], ["final loss", _fmt(tr["loss"])]]
    rows += [[f"{table}.{k}", _fmt(v)] for table in ("clif", "training")
             for k, v in tr[table].items()]
    out.append(("Training", ["setting", "value"], rows))
    t = summary["timings"]
    out.append(("Timings (s)", ["stage", "seconds"], [[k, _fmt(v)] for k, v in t.items()]))
    return out


def _fields_line(summary: dict) -> str:
    files = summary["field_files"]
    if not files:
        return "No field files written."
    if "fields.vtu" in files:
        return (f"Fields: {', '.join(files)} (fields.vtu: every field, read by ParaView, "
                "meshio and pyvista; fields.xdmf: ParaView)")
    if all(f.endswith((".xdmf", ".bp")) for f in files):
        return f"Fields for ParaView: {', '.join(files)}"
    return f"Fields (XDMF for ParaView, NumPy .npz): {', '.join(files)}"


def write_markdown(summary: dict, figures: dict[str, str], path: Path) -> Path:
    """report.md: headline, tables, figures, the command that reproduces the run."""
    lines = [f"# neurofem report: {summary['title']}", ""]
    if flag(summary):
        lines += [f"> **{flag(summary)}**: the numbers below are those of the last "
                  "checkpoint, not of the planned training.", ""]
    lines += [summary["description"], "", f"Headline: {summary['headline']}", ""]
    for title, header, rows in run_table(summary) + tables(summary):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    lines += ["## Figures", ""]
    lines += [f"![{cap}]({name})" + "\n" for name, cap in figures.items()]
    lines += ["## Reproduce", "", "```bash", summary["command"], "```", "",
              _fields_line(summary), ""]
    atomic_write(path, "\n".join(lines).encode())  # never through a planted link
    return path


def write_html(summary: dict, figures: dict[str, str], path: Path) -> Path:
    """report.html: the same content, self-contained apart from the PNGs beside it."""
    esc = html.escape
    body = [f"<h1>neurofem report: {esc(summary['title'])}</h1>"]
    if flag(summary):
        body.append(f'<p class="incomplete"><strong>{esc(flag(summary))}</strong>: the '
                    "numbers below are those of the last checkpoint, not of the planned "
                    "training.</p>")
    body += [f"<p>{esc(summary['description'])}</p>",
             f"<p><strong>{esc(summary['headline'])}</strong></p>"]
    for title, header, rows in run_table(summary) + tables(summary):
        body.append(f"<h2>{esc(title)}</h2>\n<table>")
        body.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        body += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows]
        body.append("</table>")
    body.append("<h2>Figures</h2>")
    for name, cap in figures.items():
        body.append(f'<figure><img src="{esc(name)}" alt="{esc(cap)}">'
                    f"<figcaption>{esc(cap)}</figcaption></figure>")
    body += ["<h2>Reproduce</h2>", f"<pre>{esc(summary['command'])}</pre>",
             f"<p>{esc(_fields_line(summary))}</p>"]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #bbb;"
             "padding:3px 8px;text-align:right}th{background:#eee}img{max-width:100%}"
             ".incomplete{background:#fde0dc;border:2px solid #c62828;padding:0.5em}")
    doc = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           f"<title>neurofem report: {esc(summary['title'])}</title>\n"
           f"<style>{style}</style>\n</head>\n<body>\n" + "\n".join(body)
           + "\n</body>\n</html>\n")
    atomic_write(path, doc.encode())
    return path


def write_report(summary: dict, figures: dict[str, str], out_dir: str | Path) -> dict[str, Path]:
    """summary.json, report.md and report.html into out_dir (call on rank 0 only)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "summary.json", json.dumps(summary, indent=2, default=float).encode())
    paths = {"summary": out / "summary.json",
             "markdown": write_markdown(summary, figures, out / "report.md"),
             "html": write_html(summary, figures, out / "report.html")}
    for p in [*paths.values(), *(out / name for name in figures)]:
        if p.exists():
            readable(p)
    return paths
