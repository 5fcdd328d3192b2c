"""Tables both run models share: the seed type and ``[energy]`` (operation prices)."""

from __future__ import annotations

from typing import ClassVar

from fem.schema import NonNegative, Table, between
from spiking import EnergyTable

SEED = between(0, 2**32 - 1, integer=True)  # what numpy's seed accepts


class EnergySpec(Table):
    """The ``[energy]`` table: picojoules per operation (spiking.EnergyTable)."""

    table_key: ClassVar[str] = "energy"

    mac_pj: NonNegative = EnergyTable.mac_pj
    acc_pj: NonNegative = EnergyTable.acc_pj
    read_pj: NonNegative = EnergyTable.read_pj
    write_pj: NonNegative = EnergyTable.write_pj
    name: str = EnergyTable.name
