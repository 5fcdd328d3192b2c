"""The ``[bank]`` table: train one parametric network over a bank of microstructures.

::

    [bank]
    draws = 1          # microstructures per step and rank
    validated = 2      # training members with FEM targets at the validation points
    features = { k = 2, window = 0.25 }   # k nearest inclusions; local-fraction ball
    microstructures = { count = 16, held_out = 20, volume_fraction = [0.05, 0.25],
                        n = [4, 12], seed = 0 }

``microstructures`` is :class:`meshes.bank.BankSpec` (how many members, their ranges,
the held-out set); its kind, size, gap, placement and interface size come from ``[mesh]``,
the template every member is meshed from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from fem.errors import ConfigError
from fem.schema import Positive, Table, between

FROM_MESH = ("kind", "size", "gap", "placement", "interface_size")


class FeaturesSpec(Table):
    """Which microstructure features the network sees."""

    table_key: ClassVar[str] = "bank.features"

    k: between(1, 16, integer=True) = 2  # nearest inclusions: offsets and radii
    window: Positive = 0.25  # radius of the ball of the local volume fraction
    radius_max: Positive = 0.5  # the input box's bound on radii (normalisation only)


class BankTable(Table):
    """The ``[bank]`` table (module docstring)."""

    table_key: ClassVar[str] = "bank"

    microstructures: dict[str, Any]
    draws: between(1, 64, integer=True) = 1
    validated: between(0, 1000, integer=True) = 2
    features: FeaturesSpec = FeaturesSpec()

    def spec(self, mesh) -> Any:
        """The bank's :class:`meshes.bank.BankSpec`, its mesh keys from the [mesh] table."""
        from meshes.bank import parse_bank  # deferred: loads the packing (NumPy only)

        given = set(self.microstructures) & set(FROM_MESH)
        if given:
            raise ConfigError(f"bank.microstructures.{sorted(given)[0]}", "comes from [mesh] "
                              "(the template of every member); remove it here")
        template = {"kind": mesh.kind, "size": mesh.size,
                    **{k: mesh.options[k] for k in FROM_MESH[2:] if k in mesh.options}}
        return parse_bank({**template, **self.microstructures}, "bank.microstructures")


def check_bank(run) -> None:
    """A bank run: a parametric galerkin run on a kind the bank can draw (rve, rve2d)."""
    if run.bank is None:
        return
    if run.parameters is None:
        raise ConfigError("bank", "needs a [parameters] table (the operator parameters and "
                          "load channels every member is trained over)")
    if run.mesh.kind not in ("rve", "rve2d"):
        raise ConfigError("mesh.kind", f"a bank draws rve or rve2d microstructures, got "
                          f"{run.mesh.kind!r}")
    if run.mesh.options.get("inclusion", "sphere") != "sphere" or run.mesh.options.get("void"):
        raise ConfigError("mesh.inclusion", "a bank's features describe spherical (or disk) "
                          "inclusions, not voids or other shapes")
    if run.inputs.interface_distance:
        raise ConfigError("inputs.interface_distance", "a bank run feeds its own "
                          "microstructure features ([bank] features); remove it")
    if run.training.levels:
        raise ConfigError("training.levels", "coarse-to-fine is not available with [bank]")
    run.bank.spec(run.mesh)  # the ranges checked now, before any mesh is built
