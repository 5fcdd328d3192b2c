"""The literate Python examples run top to bottom (small sizes) and print computed results."""

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_rve_elasticity_example_runs_small():
    """Coarse mesh, 200 steps: the network already carries most of the displacement."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(EXAMPLES / "rve_elasticity.py"), "--size", "0.2",
                          "--steps", "200"], capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    rel = float(re.search(r"rel\. L2 ([0-9.e+-]+)", res.stdout).group(1))
    stress = float(re.search(r"stress ([0-9.e+-]+)", res.stdout).group(1))
    activity = float(re.search(r"activity ([0-9.]+)% after 200 steps", res.stdout).group(1))
    assert rel < 0.2 and stress < 0.6
    assert 0 < activity < 100
