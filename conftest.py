"""Root pytest configuration: what the module docstring examples (doctests) may assume.

``pytest`` collects the docstring examples of the five packages (``--doctest-modules`` in
pyproject.toml). Each example imports what it uses, except the package names
themselves, which are given here as they would be after ``import meshes`` (all five load
lazily, so this costs nothing).
"""

from __future__ import annotations

import pytest

# Entry points that must not be imported by collection (importing them runs the CLI).
collect_ignore_glob = ["*/__main__.py"]


@pytest.fixture(autouse=True, scope="session")
def _doctest_packages(doctest_namespace: dict) -> None:
    """Make meshes, fem, spiking, coupling and validation names in every doctest."""
    import coupling
    import fem
    import meshes
    import spiking
    import validation

    doctest_namespace.update(meshes=meshes, fem=fem, spiking=spiking, coupling=coupling,
                             validation=validation)
