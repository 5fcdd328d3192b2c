"""`import fem` (and building, solving a problem) must work where `spiking` cannot load."""

import subprocess
import sys
import textwrap

BLOCKED_SPIKING = textwrap.dedent(
    """
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"spiking", "coupling", "validation"}:
                raise ImportError(f"blocked for this test: {name}")
            return None
    sys.meta_path.insert(0, Block())
    import ufl
    import fem, meshes
    from fem import operators, problems, reference, volumes, fv_geometry  # noqa
    dm = meshes.build("rectangle", 0.25)
    V = fem.functionspace(dm)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
    p = fem.VariationalProblem(dm, a, 1.0 * v * ufl.dx, bcs={"*": 0.0})
    print(p.solve().info["norms"]["l2"] > 0, isinstance(p, fem.Problem))
    print(sorted(m for m in sys.modules if m.split(".")[0] in {"spiking", "coupling"}))
    """
)


def test_import_fem_without_spiking(tmp_path):
    script = tmp_path / "blocked_import.py"
    script.write_text(BLOCKED_SPIKING)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "True", "[]"]
