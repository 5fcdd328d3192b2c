"""A run over a bank of microstructures: meshes per rank, the bank's discretisation, queries.

The ``[mesh]`` table is the template (kind, size, inclusion shape, placement, refinement);
each member overrides what the bank draws (volume fraction, number of inclusions, packing
seed: :func:`meshes.bank.bank_members`). Members are meshed on their rank alone
(``COMM_SELF``) through the user mesh cache, so a second run meshes nothing.
"""

from __future__ import annotations

from fem.errors import ConfigError
from meshes.fenics import MPI

DRAWN = ("volume_fraction", "n", "seed")  # what a bank member changes in the [mesh] table


def member_table(mesh, drawn: dict):
    """The [mesh] table of one member: the template with the drawn options."""
    from fem.config import MeshTable  # deferred: loads Gmsh (the registry)

    options = {**mesh.options, **{k: drawn[k] for k in DRAWN if k in drawn}}
    return MeshTable(kind=mesh.kind, size=mesh.size, options=options)


def members_of(cfg) -> tuple[list[dict], list[dict]]:
    """The drawn options of the training and held-out members of the run's bank."""
    from meshes.bank import bank_members  # deferred: loads the packing

    return bank_members(cfg.bank.spec(cfg.mesh))


def setup_bank(trainer) -> None:
    """The Trainer's discretisation and network for a bank run (collective)."""
    from coupling.residuals.bank import dealt, discretise_bank  # deferred: torch
    from fem.problems.parametric import ParametricProblem  # deferred: loads DOLFINx

    cfg, comm = trainer.cfg, trainer.comm
    spec = cfg.bank
    train, _ = members_of(cfg)
    if len(train) < comm.size:  # the same on every rank: all refuse together
        raise ConfigError("bank.microstructures.count", f"{len(train)} microstructures for "
                          f"{comm.size} ranks: every rank needs at least one")
    mine = dealt(len(train), comm)
    problems = [ParametricProblem(member_table(cfg.mesh, train[i]).build(MPI.COMM_SELF),
                                  cfg.problem, cfg.parameters) for i in mine]
    trainer.dmesh = problems[0].dmesh if problems else None
    trainer.problem = problems[0] if problems else None
    trainer.ref = None
    trainer.disc = discretise_bank(
        problems, mine, len(train), features=spec.features,
        draws=spec.draws, seed=cfg.parameters.seed, validate=spec.validated,
        dtype=trainer.dtype, reference_cache=trainer.reference_cache, comm=comm)
    trainer.net = trainer._network()


def query_problem(cfg, which: dict):
    """The ParametricProblem of one microstructure (a held-out member or a [mesh] table's
    options) on this rank alone, for a query or the held-out report."""
    from fem.problems.parametric import ParametricProblem  # deferred: loads DOLFINx

    return ParametricProblem(member_table(cfg.mesh, which).build(MPI.COMM_SELF), cfg.problem,
                             cfg.parameters)
