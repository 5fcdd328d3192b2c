"""`neurofem query RUN --microstructure N|FILE --param ...`: a bank run on one microstructure.

The microstructure is held-out member N of the run's bank, or a new one from a TOML file
of the options a bank draws (``volume_fraction``, ``n``, ``seed``) over the run's [mesh]
template. It is meshed (timed apart), the network's field at μ is written as XDMF with its
time split into features, network and the rest, beside a FEM assembly + solve on the same
mesh and, for homogenisation, the effective E and G of the network (energies of the six
unit strain cases: assembly, no solve), FEM, Mori–Tanaka and Hashin–Shtrikman.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fem.cache import check_folder
from fem.errors import ConfigError

DRAWN = ("volume_fraction", "n", "seed")


def which_microstructure(spec: str | None, held: list[dict]) -> tuple[str, dict]:
    """(label, drawn options) of ``--microstructure`` (default: held-out member 0)."""
    from fem.config import load_toml  # deferred: loads DOLFINx

    spec = "0" if spec is None else spec
    if spec.isdigit():
        j = int(spec)
        if j >= len(held):
            raise ConfigError("--microstructure", f"{j}: the bank has {len(held)} held-out "
                              f"microstructures (0 to {len(held) - 1})")
        return f"held-out {j}", held[j]
    path = Path(spec)
    if not path.is_file():
        raise ConfigError("--microstructure", f"{spec!r} is neither a held-out index nor a file")
    doc = load_toml(path)
    unknown = set(doc) - set(DRAWN)
    if unknown:
        raise ConfigError(f"{path}: {sorted(unknown)[0]}", f"unknown key (allowed: "
                          f"{', '.join(DRAWN)})")
    return str(path), doc


def query_bank(run_dir: Path, spec: str | None, values: dict, out, comm) -> dict:
    """Evaluate a bank run on one microstructure at μ (rank 0 alone computes; collective)."""
    # deferred: loads DOLFINx, torch, Gmsh
    from coupling.cli.report_bank import is_bank, query_times, stiffness_rows
    from coupling.residuals.parametric import reference_targets  # deferred: loads DOLFINx
    from coupling.runs.bank import members_of, query_problem  # deferred: loads DOLFINx
    from coupling.runs.network import load_trained  # deferred: loads DOLFINx, torch
    from validation.export import write_xdmf  # deferred: loads DOLFINx

    if not is_bank(run_dir):
        raise ConfigError("--microstructure", f"{run_dir} is not a bank run (no [bank] table)")
    trainer = load_trained(run_dir, comm)
    cfg = trainer.cfg
    label, drawn = which_microstructure(spec, members_of(cfg)[1])
    mu = trainer.disc.problem.box.parse(values)  # every rank refuses a bad --param alike
    result: dict = {}
    if comm.rank == 0:  # one microstructure, one rank: the mesh on COMM_SELF
        t0 = time.perf_counter()
        problem = query_problem(cfg, drawn)
        mesh_s = time.perf_counter() - t0
        times = query_times(problem, trainer.net, cfg.bank.features,
                            mu)
        disc = times.pop("disc")
        target = reference_targets(problem, mu[None], None, disc.n_owned)
        result = {"microstructure": label, **{k: drawn.get(k) for k in DRAWN}, "mesh_s": mesh_s,
                  **times, "rel_l2": disc.errors(trainer.net, mu[None], target)[0],
                  "parameters": problem.box.as_dicts(mu)[0]}
        if problem.name == "homogenisation":
            result["stiffness"] = stiffness_rows(problem, disc, trainer.net, mu)
        folder = Path(out) if out else run_dir / "query"
        check_folder(folder)
        folder.mkdir(parents=True, exist_ok=True)
        u = disc.to_function(trainer.net, mu[None], name="u_network")
        result["field"] = str(write_xdmf({"u_network": u}, folder / "field.xdmf",
                                         problem.vector, problem.dmesh.cell_tags))
        (folder / "query.json").write_text(json.dumps(result, indent=1, default=float))
    return comm.bcast(result, root=0)
