"""Two ranks: the distributed mesh equals the serial one; errors reach every rank (no hang).

Run with ``mpiexec -n 2 python -m pytest -m mpi tests/meshes``. Every rank computes every
quantity and asserts it, so a failing assert never leaves the other rank waiting.
"""

import numpy as np
import pytest
from meshtest_helpers import exterior_facets, global_cells, measure, tagged_facets

import meshes
from meshes.fenics import MPI

pytestmark = pytest.mark.mpi

CASES = [
    ("rve", 0.12, {"volume_fraction": 0.2, "n": 6, "seed": 4}, "inclusion"),
    ("rve", 0.15, {"volume_fraction": 0.2, "n": 6, "seed": 4, "placement": "cut",
                   "periodic": True}, "inclusion"),
    ("lshape", 0.1, {}, None),
    ("cube_minus_spheres", 0.15, {"layers": 2}, "layer1"),
]


@pytest.mark.parametrize("kind, size, options, group", CASES, ids=[c[0] for c in CASES])
def test_distributed_equals_serial(kind, size, options, group):
    world = MPI.COMM_WORLD
    dm = meshes.build(kind, size, comm=world, **options)
    ref = meshes.build(kind, size, comm=MPI.COMM_SELF, **options)  # serial, on every rank
    assert global_cells(dm) == global_cells(ref)
    assert measure(dm) == pytest.approx(measure(ref), rel=1e-12)
    if group is not None:
        assert measure(dm, group) == pytest.approx(measure(ref, group), rel=1e-12)
    assert dm.info == ref.info  # the builder extras reach every rank
    assert dm.cell_names == ref.cell_names and dm.facet_names == ref.facet_names
    # facet groups cover the exterior boundary on every rank's local part too
    outer = [n for n in dm.facet_names if n != "interface"]
    assert np.array_equal(tagged_facets(dm, outer), exterior_facets(dm))
    if world.size > 1:  # really split: every rank owns part of it
        assert 0 < dm.mesh.topology.index_map(dm.tdim).size_local < global_cells(dm)


def test_invalid_request_raises_on_every_rank():
    # resolve() fails on every rank alike
    with pytest.raises(meshes.MeshError, match="--size=-1"):
        meshes.build("rve", -1.0)
    # the packing fails on rank 0 only; the message is broadcast, no rank waits
    with pytest.raises(meshes.MeshError, match="not reached"):
        meshes.build("rve", 0.1, volume_fraction=0.34, max_attempts=500)
    # and the communicator still works afterwards
    assert MPI.COMM_WORLD.allreduce(1) == MPI.COMM_WORLD.size
