"""The report's energy table holds the summary.json numbers, in both conventions."""

import json

import pytest
import torch

import spiking
from spiking.encoders import PopulationEncoder
from validation.report import energy_table


@pytest.mark.parametrize("encoder", [None, "hat"])
def test_energy_table_equals_json(encoder):
    vsn = lambda n: spiking.VSN(n, activation="tanh", num_steps=2, threshold=0.05)  # noqa: E731
    enc = PopulationEncoder(2, 8) if encoder else None
    net = spiking.MLP(2, [16, 16], unit=vsn, fourier=0 if enc else 8, encoder=enc, seed=0,
                      bounds=[[0, 0], [1, 1]])
    with spiking.ActivityMonitor(net) as mon:
        net(torch.rand(64, 2))
    en = json.loads(json.dumps(spiking.energy_report(net, mon).to_dict()))  # as summary.json
    title, header, rows = energy_table(en)
    assert "full" in title and "compute-only" in title
    by = {r[0]: r for r in rows}
    for la in en["layers"]:
        got = [float(v) for v in by[la["name"]][1:5]]
        want = [la["ann_pj"], la["snn_pj"], la["ann_compute_pj"], la["snn_compute_pj"]]
        assert got == pytest.approx(want, rel=1e-3)
    co = en["compute_only"]
    assert [float(v) for v in by["total"][1:5]] == pytest.approx(
        [en["ann_pj"], en["snn_pj"], co["ann_pj"], co["snn_pj"]], rel=1e-3)
    assert float(by["ratio SNN / ANN"][2]) == pytest.approx(en["ratio"], rel=1e-3)
    assert float(by["ratio SNN / ANN"][4]) == pytest.approx(co["ratio"], rel=1e-3)
    fl = by["floor (zero activity)"]
    assert float(fl[2]) == pytest.approx(en["floor"]["ratio"], rel=1e-3)
    assert float(fl[4]) == pytest.approx(en["floor"]["ratio_compute"], rel=1e-3)
    assert en["floor"]["ratio_compute"] < en["compute_only"]["ratio"]
