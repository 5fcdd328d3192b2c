"""Interface refinement of RVE meshes: the requested size at the inclusion surfaces, measured
on the mesh, the coarse size away from them; the [mesh] table and `neurofem mesh rve` flags."""

from __future__ import annotations

import gmsh
import numpy as np
import pytest

import meshes
from coupling.cli import main
from fem.config import parse_mesh
from fem.errors import ConfigError
from meshes.fenics import MPI

COARSE, WIDTH = 0.2, 0.1


def _interface_edges(dm) -> np.ndarray:
    """Lengths of the edges of the interface facets (triangles on the sphere surfaces)."""
    mesh = dm.mesh
    mesh.topology.create_connectivity(2, 0)
    f2v = mesh.topology.connectivity(2, 0)
    v = np.array([f2v.links(f) for f in dm.facets("interface")])
    x = mesh.geometry.x
    return np.concatenate([np.linalg.norm(x[v[:, i]] - x[v[:, j]], axis=1)
                           for i, j in ((0, 1), (0, 2), (1, 2))])


def _far_cell_edges(dm, beyond: float) -> np.ndarray:
    """Mean edge length of the cells whose centroid is farther than `beyond` from every sphere."""
    x, c = dm.mesh.geometry.x, dm.mesh.geometry.dofmaps[0]
    mean = np.mean([np.linalg.norm(x[c[:, i]] - x[c[:, j]], axis=1)
                    for i in range(4) for j in range(i + 1, 4)], axis=0)
    mid = x[c].mean(axis=1)
    centres, radii = np.array(dm.info["centres"]), np.array(dm.info["radii"])
    dist = np.abs(np.linalg.norm(mid[:, None] - centres[None], axis=2) - radii[None]).min(axis=1)
    return mean[dist > beyond]


@pytest.mark.parametrize("fine", [0.1, 0.05])
def test_size_field_gives_the_requested_size_at_the_interface_and_coarse_away(fine):
    """interface_size = fine, width 0.1, size 0.2: the interface triangles' edges average
    within 20% of `fine`; cells beyond width + coarse from every sphere average within 15% of
    the coarse size; the finer request has more cells."""
    dm = meshes.build("rve", COARSE, MPI.COMM_SELF, n=2, interface_size=fine,
                      interface_width=WIDTH)
    edges = _interface_edges(dm)
    assert 0.85 * fine < edges.mean() < 1.2 * fine, (fine, edges.mean())
    far = _far_cell_edges(dm, WIDTH + COARSE)
    assert len(far) > 100
    assert 0.85 * COARSE < far.mean() < 1.15 * COARSE, far.mean()
    assert dm.info["interface_size"] == pytest.approx(fine)


def test_mesh_table_refine_interfaces_fills_the_builder_options():
    """[mesh] refine_interfaces = {size, width} → interface_size/_width; refused (one line
    naming the key) for a kind without inclusions, given twice or with a bad value."""
    t = parse_mesh({"kind": "rve", "size": 0.2, "refine_interfaces": {"size": 0.05, "width": 0.1}})
    assert t.options["interface_size"] == 0.05 and t.options["interface_width"] == 0.1
    bad = [({"kind": "rectangle", "refine_interfaces": {"size": 0.05, "width": 0.1}},
            "mesh.refine_interfaces"),
           ({"kind": "rve", "interface_size": 0.1, "refine_interfaces": {"size": 0.05,
                                                                         "width": 0.1}},
            "mesh.refine_interfaces"),
           ({"kind": "rve", "refine_interfaces": {"size": -0.05, "width": 0.1}},
            "mesh.refine_interfaces.size"),
           ({"kind": "rve", "refine_interfaces": {"size": 0.05}}, "mesh.refine_interfaces.width")]
    for table, key in bad:
        with pytest.raises(ConfigError) as err:
            parse_mesh(table)
        assert str(err.value).startswith(f"config {key}"), str(err.value)
        assert "\n" not in str(err.value)


def test_cli_mesh_rve_interface_flags(tmp_path, capsys):
    """`neurofem mesh rve --interface-size --interface-width` writes the refined mesh: the
    .msh holds more tetrahedra than the default one (refine 0.5: 0.125 at the interfaces)."""
    counts = []
    for extra in ([], ["--interface-size", "0.06", "--interface-width", "0.1"]):
        out = tmp_path / f"rve{len(extra)}.msh"
        assert main(["mesh", "rve", "--size", "0.25", "--n", "2", "-o", str(out), *extra]) == 0
        gmsh.initialize(interruptible=False)
        try:
            gmsh.open(str(out))
            counts.append(sum(len(t) for t in gmsh.model.mesh.getElements(3)[1]))
        finally:
            gmsh.finalize()
    assert counts[1] > 1.5 * counts[0], counts
