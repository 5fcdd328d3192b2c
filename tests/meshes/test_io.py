"""File import (.step/.stl/.msh), export (.msh/.xdmf/.vtu) and PNG previews."""

import math

import gmsh
import meshio
import numpy as np
import pytest
from meshtest_helpers import exterior_facets, measure, tagged_facets

import meshes
from meshes.fenics import MPI, dolfinx


def _write_model(path, draw, dim):
    with meshes.gmsh_session():
        draw(gmsh.model.occ)
        gmsh.model.occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.05)
        if dim:
            gmsh.model.mesh.generate(dim)
        gmsh.write(str(path))
    return str(path)


def test_stl_closed_surface_becomes_volume_mesh(tmp_path):
    stl = _write_model(tmp_path / "ball.stl", lambda occ: occ.addSphere(0, 0, 0, 0.5), 2)
    dm = meshes.build("file", 0.1, path=stl)
    assert dm.tdim == 3 and set(dm.cell_names) == {"domain"} and set(dm.facet_names) == {"boundary"}
    # the STL is a polyhedron inscribed in the sphere: volume slightly below 4/3 pi r^3
    exact = 4 / 3 * math.pi * 0.125
    assert 0.97 * exact < measure(dm) < exact
    assert np.array_equal(tagged_facets(dm, ["boundary"]), exterior_facets(dm))


def test_step_import_meshed_at_size(tmp_path):
    def draw(occ):
        box = occ.addBox(0, 0, 0, 2, 1, 0.5)
        occ.cut([(3, box)], [(3, occ.addCylinder(1, 0.5, -1, 0, 0, 3, 0.2))])

    step = _write_model(tmp_path / "part.step", draw, 0)
    dm = meshes.build("file", 0.1, path=step)
    exact = 1.0 - math.pi * 0.04 * 0.5
    assert abs(measure(dm) - exact) / exact < 0.01
    assert np.array_equal(tagged_facets(dm, ["boundary"]), exterior_facets(dm))


@pytest.fixture(scope="module")
def plate_msh(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("msh") / "plate.msh")
    with meshes.gmsh_session():
        info = meshes.build_model("plate_with_holes", 0.1)
        meshes.write(path)
    return path, info


def test_msh_roundtrip_keeps_physical_groups(plate_msh):
    path, info = plate_msh
    dm = meshes.build("file", path=path)
    assert dm.mesh.geometry.dim == 2
    assert set(dm.facet_names) == {"x0", "x1", "y0", "y1", "holes"}
    assert global_cells(dm) == info["quality"]["cells"]
    assert measure(dm) == pytest.approx(info["measures"]["domain"], rel=1e-12)
    names = meshio.read(path).field_data
    assert {"domain", "holes", "x0"} <= set(names)


def test_msh_without_groups_gets_domain_and_boundary(tmp_path):
    path = tmp_path / "bare.msh"
    with meshes.gmsh_session():
        gmsh.model.occ.addBox(0, 0, 0, 1, 2, 1)
        gmsh.model.occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.3)
        gmsh.model.mesh.generate(3)
        gmsh.option.setNumber("Mesh.SaveAll", 1)
        gmsh.write(str(path))
    dm = meshes.build("file", path=str(path))
    assert set(dm.cell_names) == {"domain"} and set(dm.facet_names) == {"boundary"}
    assert measure(dm) == pytest.approx(2.0, rel=1e-12)
    assert np.array_equal(tagged_facets(dm, ["boundary"]), exterior_facets(dm))


def global_cells(dm):
    return dm.mesh.topology.index_map(dm.tdim).size_global


@pytest.fixture(scope="module")
def rve_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rve")
    paths = {ext: str(folder / f"rve.{ext}") for ext in ("msh", "xdmf", "vtu", "png")}
    with meshes.gmsh_session():
        info = meshes.build_model("rve", 0.12, volume_fraction=0.15, n=4, seed=0)
        for ext in ("msh", "xdmf", "vtu"):
            meshes.write(paths[ext])
        meshes.preview(paths["png"])
    return paths, info


def test_vtu_export_has_cells_and_phases(rve_files):
    paths, info = rve_files
    m = meshio.read(paths["vtu"])
    assert sum(len(b.data) for b in m.cells) == info["quality"]["cells"]
    phase = np.concatenate(m.cell_data["phase"])
    assert set(np.unique(phase)) == {1, 2}  # matrix, inclusion physical tags
    vol = sum(meshes.mesh_quality.simplex_measures(m.points[b.data]).sum() for b in m.cells)
    assert vol == pytest.approx(1.0, rel=1e-10)


def test_xdmf_export_reads_back_into_dolfinx(rve_files):
    paths, info = rve_files
    with dolfinx.io.XDMFFile(MPI.COMM_WORLD, paths["xdmf"], "r") as f:
        mesh = f.read_mesh()
        mesh.topology.create_connectivity(2, 3)
        phase = f.read_meshtags(mesh, "phase")
        bnd = f.read_meshtags(mesh, "boundary")
    assert mesh.topology.index_map(3).size_global == info["quality"]["cells"]
    assert set(np.unique(phase.values)) == {1, 2}
    assert len(np.unique(bnd.values)) == 7  # six faces + interface


def test_msh_export_keeps_names(rve_files):
    paths, _ = rve_files
    names = set(meshio.read(paths["msh"]).field_data)
    assert names == {"matrix", "inclusion", "x0", "x1", "y0", "y1", "z0", "z1", "interface"}


def _image_std(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    return float(np.std(img[..., :3]))


def test_previews_are_not_blank(rve_files, tmp_path):
    paths, _ = rve_files
    assert _image_std(paths["png"]) > 0.05
    png2d = str(tmp_path / "lshape.png")
    with meshes.gmsh_session():
        meshes.build_model("lshape", 0.2)
        meshes.preview(png2d)
    assert _image_std(png2d) > 0.05


def test_export_rejects_unknown_format(tmp_path):
    with meshes.gmsh_session():
        meshes.build_model("rectangle", 0.5)
        with pytest.raises(meshes.MeshError, match=r"output=.*\.obj.*unsupported"):
            meshes.write(str(tmp_path / "x.obj"))
        with pytest.raises(meshes.MeshError, match="does not exist"):
            meshes.write(str(tmp_path / "missing" / "x.msh"))
