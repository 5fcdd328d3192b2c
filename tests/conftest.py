"""Every test gets its own empty user cache (fem.cache): no test reads or fills ~/.cache."""

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NEUROFEM_CACHE", str(tmp_path_factory.mktemp("neurofem-cache")))
