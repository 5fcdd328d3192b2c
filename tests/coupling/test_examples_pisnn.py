"""The literate PISNN example (examples/pisnn_heat1d.py) runs top to bottom at small size:
it trains through `fit`, rolls out in integers with zero drift, and is accurate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "pisnn_heat1d.py"


def test_pisnn_heat1d_example_runs_small():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(EXAMPLE), "--cells", "16", "--steps", "60"],
                         capture_output=True, text=True, timeout=600, env=env,
                         cwd=EXAMPLE.parents[1])
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert re.search(r"trained 60 steps", out)
    m = re.search(r"rel\. L2 error ([\d.]+)% after (\d+) steps.*drift (-?\d+) quanta \((-?\d+) = "
                  r"(-?\d+) boundary \+ (-?\d+) source\)", out)
    assert m, out
    err, steps, drift, total, boundary, source = (float(m[1]), *map(int, m.groups()[1:]))
    assert drift == 0 and total == boundary + source  # started from zero quanta
    assert steps > 500  # the rollout goes 5x past the training horizon t <= 0.2
    assert err < 5.0  # percent, at t = 1
