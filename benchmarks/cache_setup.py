"""Setup time of a training run with an empty and with a warm user cache (fem.cache).

    python -m benchmarks.cache_setup CONFIG [--mesh KEY=VALUE ...] [--repeat 2]

Each measurement runs in a fresh process (imports are not timed) against the same,
initially empty cache folder: the first builds the mesh with Gmsh and solves the FEM
reference, the later ones read both from the cache. Prints one JSON line per run with
the mesh, reference and total ``Trainer.setup`` times (seconds) and the cells/dofs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

_CHILD = """
import json, sys, time
from pathlib import Path
import meshes
import coupling.runs.network as T
from coupling.config import parse_run_config
t = {}
def timed(name, fn):
    def wrapper(*a, **k):
        t0 = time.perf_counter(); out = fn(*a, **k); t[name] = time.perf_counter() - t0
        return out
    return wrapper
meshes.build = timed("mesh_s", meshes.build)
T.reference = timed("reference_s", T.reference)
tr = T.Trainer(parse_run_config(json.loads(sys.argv[1])), Path(sys.argv[2]))
t0 = time.perf_counter()
tr.setup()
t["setup_s"] = time.perf_counter() - t0
t["cells"] = tr.dmesh.mesh.topology.index_map(tr.dmesh.tdim).size_global
t["dofs"] = tr.ref.info.get("global_dofs")
t["reference_from_cache"] = tr.ref.from_cache
print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in t.items()}))
"""


def main() -> None:
    """Run the measurement and print one JSON line per run."""

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--mesh", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [mesh] key (value parsed as TOML)")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    doc = tomllib.loads(Path(args.config).read_text())
    for item in args.mesh:
        key, value = item.split("=", 1)
        doc["mesh"][key] = tomllib.loads(f"v = {value}")["v"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env["NEUROFEM_CACHE"] = str(Path(tmp) / "cache")
        for i in range(args.repeat):
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(doc),
                                  str(Path(tmp) / f"run{i}")], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            rec = json.loads(out)
            rec.update(run=i + 1, process_s=round(time.perf_counter() - t0, 2),
                       mesh=doc["mesh"])
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
