"""`python -m benchmarks.training_cost`'s variant strings (no training)."""

from __future__ import annotations

import pytest


def test_preconditioned_settings_and_node_batches_parse_into_one_optimizer_table():
    from benchmarks.training_cost import _variant

    v = _variant("optimizer=preconditioned,batch=0.1,every=25,cycles=3,steps=1000", 6000)
    assert v["optimizer"] == {"kind": "preconditioned", "every": 25, "cycles": 3}
    assert v["batch"] == 0.1 and v["steps"] == 1000 and not v["compile"]
    plain = _variant("optimizer=preconditioned", 6000, 0.05)
    assert plain["optimizer"] == "preconditioned" and plain["batch"] == 0.05
    with pytest.raises(SystemExit, match="unknown variant part 'smoother=jacobi'"):
        _variant("smoother=jacobi", 10)
