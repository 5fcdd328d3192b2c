"""``training.optimizer``: plain Adam steps, or preconditioned function-space steps.

A name, or a table with settings (:class:`OptimizerSpec`)::

    [training]
    optimizer = "preconditioned"       # or "adam" (the default)

    [training.optimizer]               # the same, with its settings
    kind = "preconditioned"
    every = 10                         # steps between preconditioned corrections
    cycles = 10                        # preconditioned CG iterations per correction
    preconditioner = "gamg"            # gamg (rigid-body modes for elasticity) | jacobi
    energy_weight = 0.0                # β of an energy-norm misfit beside the L2 one

The preconditioned steps (:mod:`coupling.training.preconditioned`) regress the network
towards u + α P⁻¹(b − Ku) of the Galerkin energy, so they need the galerkin residual with
Dirichlet data carried by the network (boundary mode exact or hard) and a steady,
non-parametric problem; :func:`check_optimizer` refuses anything else with one line naming
``training.optimizer``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Tag

from fem.errors import ConfigError
from fem.schema import MAX_COUNT, Table, between

OPTIMIZERS = ("adam", "preconditioned")
PRECONDITIONERS = ("gamg", "jacobi")  # fem.preconditioners.PRECONDITIONERS


class OptimizerSpec(Table):
    """How each training step moves the network (``[training.optimizer]``)."""

    table_key: ClassVar[str] = "training.optimizer"

    kind: Literal[OPTIMIZERS] = "adam"
    # the loop's Adam steps between two corrections (each regresses towards one target)
    every: between(1, MAX_COUNT, integer=True) = 10
    # CG iterations preconditioned by P per correction (1: P applied once, one V-cycle)
    cycles: between(1, 1000, integer=True) = 10
    preconditioner: Literal[PRECONDITIONERS] = "gamg"
    # β of an energy-norm misfit β·(u − t)ᵀK(u − t)/tᵀKt beside the L2 one (0: L2 alone):
    # smoother strains, slower displacements (docs/algorithms.md, "Preconditioned training")
    energy_weight: between(0.0, 1e6) = 0.0


def _tag(value: Any) -> str:
    return "<table>" if isinstance(value, dict | OptimizerSpec) else "<name>"


#: the type of ``training.optimizer``: a name (kept as given, so a config that names
#: "adam" resolves and hashes as before) or a table of settings
OPTIMIZER = Annotated[Annotated[Literal[OPTIMIZERS], Tag("<name>")]
                      | Annotated[OptimizerSpec, Tag("<table>")], Discriminator(_tag)]


def optimizer_spec(value: str | dict | OptimizerSpec | None) -> OptimizerSpec:
    """The settings of a ``training.optimizer`` value (a name gets the defaults).

    >>> optimizer_spec("preconditioned").every
    10
    >>> optimizer_spec({"kind": "preconditioned", "cycles": 0})
    Traceback (most recent call last):
        ...
    neurofem_errors.ConfigError: config training.optimizer.cycles: expected an integer >= 1, got 0
    """
    if value is None:
        return OptimizerSpec()
    if isinstance(value, OptimizerSpec):
        return value
    if isinstance(value, str):
        if value not in OPTIMIZERS:
            raise ConfigError("training.optimizer", f"unknown value {value!r} (choose from "
                              f"{', '.join(OPTIMIZERS)})")
        return OptimizerSpec(kind=value)
    if isinstance(value, dict):
        return OptimizerSpec(**value)
    raise ConfigError("training.optimizer", f"expected a name or a table, got {value!r}"[:200])


def check_optimizer(run: Any) -> None:
    """Refuse a preconditioned optimizer that the run cannot use (one line naming the key).

    `run` is a validated ``NetworkRun``: residual, boundary mode, parameters and problem.
    """
    spec = optimizer_spec(run.training.optimizer)
    if spec.kind != "preconditioned":
        return
    why = None
    if run.residual.kind != "galerkin":
        why = f"preconditions the Galerkin energy; residual.kind is {run.residual.kind!r}"
    elif run.parameters is not None:
        why = "is for one problem; a parametric run ([parameters]) trains a family"
    elif getattr(run.training, "levels", None):
        why = "trains on one mesh; it is not combined with training.levels (coarse to fine)"
    elif run.boundary.mode == "soft":
        why = ("needs the Dirichlet data carried by the network: boundary.mode = \"exact\" "
               "or \"hard\", not \"soft\"")
    elif run.problem.type not in ("poisson", "poisson_boltzmann", "elasticity"):
        why = f"needs a steady problem with a Galerkin energy, not {run.problem.type!r}"
    if why:
        raise ConfigError("training.optimizer", f"'preconditioned' {why}")
