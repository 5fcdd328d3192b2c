"""`import spiking` must work where DOLFINx and the other neurofem packages cannot load."""

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = {"dolfinx", "dolfinx_solver", "petsc4py", "mpi4py", "ufl", "basix",
               "meshes", "fem", "coupling", "validation", "pyvista", "gmsh"}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None
    sys.meta_path.insert(0, Block())
    try:
        import dolfinx  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("blocker failed")
    import torch
    import spiking
    from spiking import build_mlp, ActivityMonitor, energy_report, convert_relu_mlp
    from spiking import conversion, energy, monitor, networks, neurons, surrogate  # noqa
    net = build_mlp(3, 3, [8], neuron="vsn", activation="tanh", num_steps=2, threshold=0.01)
    with ActivityMonitor(net) as mon:
        net(torch.rand(5, 3))
    print(round(energy_report(net, mon).ratio, 6) > 0)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(loaded)
    """
)


def test_import_spiking_without_dolfinx(tmp_path):
    script = tmp_path / "blocked_import.py"
    script.write_text(BLOCKER)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "[]"]
