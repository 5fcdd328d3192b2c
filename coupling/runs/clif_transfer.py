"""Transferring PISNN's flux operator: one trained flux network used on other cases.

PISNN (Zhang & Wang, arXiv 2511.21784) learns a time-invariant evolution operator: the
flux network F is shared by every facet, has no time or position input, and sees a facet
only through its two cell values and its geometry factor,

    F(a, b, w) = w · u_s · [g(a/u_s, b/u_s) − g(b/u_s, a/u_s)],   w = A/d,

A the facet area (a point in 1D, a length in 2D, an area in 3D), d the distance between the
cell centroids (cell centroid to facet centroid on a boundary), u_s the field scale fixed
when the network was built. So the same F applies unchanged to any initial condition,
source, horizon and mesh of any dimension: the dimension and the mesh enter only through w
(and the cell volumes, which turn amounts into values), never through the inputs of g.
With ``clif.geometry = true`` g also reads log w; a network trained on one mesh has seen
only that mesh's w values, and on another mesh it extrapolates in that input.

``[clif] flux_from = "RUN"`` (or ``neurofem train CONFIG --flux-from RUN``) builds a run's
flux network from the trained C-LIF run RUN: its widths, activation, geometry input and
u_s (a buffer of the network) and its latest checkpoint's weights. With
``training.steps = 0`` (what ``--flux-from`` sets unless ``--steps`` is given) the network
is used unchanged; with steps > 0 the transferred weights are the initialisation that the
run's own windows then train. The run's quantum, Δt, broadcast step, boundary and source
data and reference are its own. Python API: :func:`load_flux` gives the trained network
(put it into any :class:`spiking.CLIFSolver`), :func:`with_flux_from` the run config with
the source's network keys, and :func:`coupling.runs.clif.train_clif` does the rest.

A bad source ends the run with one :class:`fem.errors.ConfigError` line naming
``clif.flux_from`` and the directory: missing, not a run directory, a run of another model
(e.g. a coordinate network), no checkpoint, or network keys of the run that contradict it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from coupling.config import parse_clif_config
from coupling.config.clif import CLIFRunConfig
from coupling.training.checkpoint import CheckpointError, config_hash, load_checkpoint
from coupling.training.resume import find_latest_checkpoint
from coupling.training.rundir import CONFIG
from fem.config import load_toml
from fem.errors import ConfigError
from spiking import FluxNet

KEY = "clif.flux_from"
#: the [clif] keys that define the flux network itself: they come from the source run
NETWORK_KEYS = ("hidden", "activation", "geometry")


@dataclass
class FluxSource:
    """A trained C-LIF run's flux network: its directory, config, network and step."""

    run_dir: Path
    cfg: CLIFRunConfig
    net: FluxNet
    step: int

    def describe(self) -> str:
        """One line: where the network comes from and what it was trained on."""
        c, p = self.cfg, self.cfg.problem
        mesh = (f"{'x'.join(str(n) for n in c.grid['n'])}-cell grid" if c.grid is not None
                else f"'{c.mesh.kind}' mesh")
        return f"{self.run_dir} ({p.type} on a {mesh}, {self.step} steps)"


def load_flux(run_dir: str | Path, comm=None, key: str = KEY) -> FluxSource:
    """The trained flux network of the C-LIF run in run_dir (its latest checkpoint), without
    building its problem; a bad directory is a ConfigError naming `key` and the path."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(key, f"{path}: no such run directory")
    if not (path / CONFIG).is_file():
        raise ConfigError(key, f"{path}: not a run directory (no {CONFIG})")
    try:
        doc = load_toml(path / CONFIG)
    except ConfigError as exc:
        raise ConfigError(key, f"{path}: unreadable {CONFIG} ({exc.message})") from None
    model = doc.get("model", "network")
    if model != "clif":
        raise ConfigError(key, f"{path} is a model = {model!r} run, not a C-LIF "
                          "(model = \"clif\") run: it has no flux network")
    try:
        cfg = parse_clif_config(doc)
    except ConfigError as exc:
        raise ConfigError(key, f"{path}: its {CONFIG} is invalid ({exc})") from None
    c = cfg.clif
    net = FluxNet(c.hidden, c.activation, geometry=c.geometry)  # u_s: from the checkpoint
    digest = config_hash(cfg.resolved())
    try:
        found = find_latest_checkpoint(path, digest, comm=comm)
        if found is None:
            raise ConfigError(key, f"{path}: no checkpoint (train the run first)")
        payload = load_checkpoint(found[0], digest, model=net, restore_rng=False)
    except CheckpointError as exc:
        raise ConfigError(key, f"{path}: {exc}") from None
    net.eval()
    return FluxSource(path, cfg, net, int(payload["step"]))


def with_flux_from(cfg: CLIFRunConfig, comm=None) -> tuple[CLIFRunConfig, FluxSource | None]:
    """cfg with the flux network keys of its ``clif.flux_from`` run, and that run's
    network (cfg unchanged and None without flux_from). A network key given in cfg that
    differs from the source's is a ConfigError naming it."""
    if cfg.clif.flux_from is None:
        return cfg, None
    source = load_flux(cfg.clif.flux_from, comm)
    given = cfg.raw.get("clif", {}) if isinstance(cfg.raw.get("clif"), dict) else {}
    update = {}
    for name in NETWORK_KEYS:
        mine, theirs = getattr(cfg.clif, name), getattr(source.cfg.clif, name)
        if name in given and mine != theirs:
            raise ConfigError(f"clif.{name}", f"{mine!r} differs from {theirs!r} of the "
                              f"flux_from run {source.run_dir} (its network is used: drop "
                              "the key)")
        update[name] = theirs
    return dataclasses.replace(cfg, clif=cfg.clif.model_copy(update=update)), source
