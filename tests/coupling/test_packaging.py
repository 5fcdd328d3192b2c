"""`pip install .` (not editable) gives a working `neurofem demo` and `neurofem bench`.

The wheel is built from a copy of the sources (so no stale ``build/`` of the checkout
leaks into it), installed with ``pip install --target`` into a temporary folder, and the
console script is run from another temporary folder with only that install on the path:
the demo's config and the bench configs must come from the installed package data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("meshes", "fem", "spiking", "coupling", "validation", "benchmarks")
BENCH_CONFIGS = ("lshape-vsn-galerkin.toml", "bench-rve-elasticity.toml", "heat1d-clif.toml")


def _pip(*args: str, cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the folder it was installed into with pip --target)."""
    base = tmp_path_factory.mktemp("packaging")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=ignore)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(base / "dist"),
         str(src), cwd=base)
    wheel, = (base / "dist").glob("neurofem-*.whl")
    _pip("install", "--no-deps", "-q", "--target", str(base / "target"), str(wheel), cwd=base)
    return wheel, base / "target"


def _outside(target: Path, cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    """Run `cmd` in `cwd` with the installed target first on the path (not the checkout)."""
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_wheel_holds_the_cli_the_harness_and_their_configs(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "coupling/cli/configs/demo-rve-elasticity.toml" in names
    for module in ("__init__", "__main__", "train", "demo", "report"):
        assert f"coupling/cli/{module}.py" in names
    for module in ("__init__", "cli", "grid", "cells", "measure", "harness", "tables", "peers"):
        assert f"benchmarks/{module}.py" in names
    for config in BENCH_CONFIGS:
        assert f"benchmarks/configs/{config}" in names
    assert not any("/results/" in n for n in names)  # recorded results stay in the repo
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "neurofem = coupling.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_packaged_demo_config_is_the_example():
    """The demo config shipped with coupling.cli is byte for byte examples/'s copy."""
    from coupling.cli.demo import CONFIG

    example = ROOT / "examples" / CONFIG.name
    assert CONFIG.read_bytes() == example.read_bytes(), (
        f"{CONFIG} differs from {example}: copy examples/{CONFIG.name} over it")


def test_installed_demo_and_bench_run_outside_the_checkout(installed, tmp_path):
    _, target = installed
    probe = ("import coupling, benchmarks; from coupling.cli.demo import CONFIG; "
             "from benchmarks.grid import load_config; "
             "print(coupling.__file__, benchmarks.__file__, CONFIG, CONFIG.is_file(), "
             "load_config('lshape-vsn-galerkin.toml')['mesh']['kind'])")
    r = _outside(target, tmp_path, sys.executable, "-c", probe)
    assert r.returncode == 0, r.stderr[-2000:]
    coupling_file, bench_file, config, exists, kind = r.stdout.split()
    for path in (coupling_file, bench_file, config):
        assert Path(path).is_relative_to(target), path
    assert exists == "True" and kind == "lshape"
    script = target / "bin" / "neurofem"
    for command in (["demo", "--help"], ["bench", "--help"]):
        r = _outside(target, tmp_path, sys.executable, str(script), *command)
        assert r.returncode == 0, r.stderr[-2000:]
        assert f"usage: neurofem {command[0]}" in r.stdout
    # bad input still ends in one line, exit 2, from the installed harness
    r = _outside(target, tmp_path, sys.executable, str(script), "bench", "--only", "nope")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("neurofem: error: --only 'nope'")
