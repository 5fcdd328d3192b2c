"""Figures of a report drawn with matplotlib: training curves, C-LIF rollouts, cell values.

Every legend names the spiking layers as the report's tables do (:func:`layer_label`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np


def layer_label(name: str) -> str:
    """The report's name of a spiking layer: the activity monitor's "units.<i>" is the
    energy table's "hidden<i>" (the i-th hidden layer); other names are kept."""
    m = re.fullmatch(r"units\.(\d+)", name)
    return f"hidden{m.group(1)}" if m else name


def _plt():
    import matplotlib  # deferred: loads matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: loads matplotlib

    return plt


def curves(records: list[dict], path: str | Path, reference: str = "FEM") -> str:
    """Loss, relative L2 error and spiking activity against the step (matplotlib).

    Records without a loss, an error or an activity (a C-LIF run measures its rollout only
    every few steps) leave gaps; `reference` names what the error is measured against.
    """
    plt = _plt()
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    loss = [(s, r["loss"]) for s, r in zip(steps, records, strict=True)
            if r.get("loss") is not None]
    if loss:
        ax[0].plot(*zip(*loss, strict=True), color="#3182bd", marker="." if len(loss) < 30
                   else None)
    ax[0].set(xlabel="step", ylabel="loss", title="training loss")
    err = [(s, r["rel_l2"]) for s, r in zip(steps, records, strict=True)
           if r.get("rel_l2") is not None]
    if err:
        ax[1].semilogy(*zip(*err, strict=True), color="#e6550d", marker=".")
    ax[1].set(xlabel="step", ylabel=f"relative L2 error vs {reference}",
              title="error (lumped L2)")
    act = [(s, r["activity"]) for s, r in zip(steps, records, strict=True) if r.get("activity")]
    if act:
        ax[2].plot([s for s, _ in act], [a["mean"] for _, a in act], color="#31a354",
                   marker=".", label="mean")
        for name in act[-1][1].get("layers", {}):
            ax[2].plot([s for s, _ in act], [a.get("layers", {}).get(name, np.nan)
                                             for _, a in act], lw=0.8, ls="--",
                   label=layer_label(name))
        ax[2].legend(fontsize=7)
    ax[2].set(xlabel="step", ylabel="fraction of neuron-steps spiking", title="spiking activity")
    return _save(fig, ax, path)


def _save(fig, axes, path: str | Path) -> str:
    """Grid on every axis, tight layout, PNG at 110 dpi; the figure is closed."""
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return str(path)


def rollout_curves(rollout: dict, path: str | Path, reference: str = "reference") -> str:
    """A C-LIF rollout (the rollout.json format): error, total quanta and drift over time,
    and spikes per step (matplotlib)."""
    plt = _plt()
    t = np.asarray(rollout["t"], dtype=float)
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.6))
    err = [(ti, e) for ti, e in zip(t, rollout["rel_l2"], strict=True) if e is not None]
    if err:
        ax[0].plot(*zip(*err, strict=True), color="#e6550d", marker=".")
    ax[0].set(xlabel="t", ylabel=f"relative L2 error vs {reference}", title="rollout error")
    ax[1].plot(t, rollout["total_quanta"], color="#3182bd", marker=".", label="total quanta")
    ax[1].set(xlabel="t", ylabel="quanta in the domain", title="total quanta and drift")
    drift = ax[1].twinx()
    drift.plot(t, rollout["mass_drift"], color="#d62728", ls="--", label="mass drift")
    drift.set_ylabel("mass drift (quanta)", color="#d62728")
    lo, hi = min(rollout["mass_drift"]), max(rollout["mass_drift"])
    drift.set_ylim(lo - 1, hi + 1)
    ax[1].legend(handles=ax[1].get_lines() + drift.get_lines(), fontsize=7, loc="lower right")
    moved = np.asarray(rollout["spikes_quanta_moved"], dtype=float)
    fired = np.asarray(rollout["spikes_neurons_fired"], dtype=float)
    steps = np.arange(1, len(moved) + 1)
    ax[2].plot(steps, moved, color="#756bb1", lw=0.8, label="quanta moved")
    ax[2].plot(steps, fired, color="#31a354", lw=0.8, label="neurons fired")
    ax[2].set(xlabel="rollout step", ylabel="per step", title="spikes per step")
    if len(moved) and moved.max() > 0:
        ax[2].set_yscale("symlog", linthresh=1.0)
    ax[2].legend(fontsize=7)
    return _save(fig, ax, path)


def cell_values(centroids: np.ndarray, u: np.ndarray, ref: np.ndarray, path: str | Path,
                labels: tuple[str, str] = ("spiking solver", "reference")) -> str:
    """Cell values against a reference at the cell centroids: a line plot in 1D, scatter
    views (value, reference, error) in 2D and 3D (matplotlib)."""
    plt = _plt()
    x = np.asarray(centroids, dtype=float).reshape(len(u), -1)
    if x.shape[1] == 1:
        order = np.argsort(x[:, 0])
        fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
        ax[0].plot(x[order, 0], ref[order], color="black", lw=2, label=labels[1])
        ax[0].plot(x[order, 0], u[order], color="#e6550d", ls="--", marker=".", label=labels[0])
        ax[0].set(xlabel="x", ylabel="u (cell average)", title="u at the end of the rollout")
        ax[0].legend(fontsize=8)
        ax[1].plot(x[order, 0], (u - ref)[order], color="#d62728", marker=".")
        ax[1].set(xlabel="x", ylabel=f"{labels[0]} − {labels[1]}", title="error")
        for a in ax:
            a.grid(alpha=0.3)
    else:
        kw = {"projection": "3d"} if x.shape[1] == 3 else {}
        fig = plt.figure(figsize=(15, 4.4))
        lo, hi = float(min(u.min(), ref.min())), float(max(u.max(), ref.max()))
        err = u - ref
        for i, (vals, title, cmap, clim) in enumerate((
                (u, labels[0], "viridis", (lo, hi)), (ref, labels[1], "viridis", (lo, hi)),
                (err, "error", "coolwarm", (-float(np.abs(err).max()) or -1.0,
                                            float(np.abs(err).max()) or 1.0)))):
            ax = fig.add_subplot(1, 3, i + 1, **kw)
            size = max(2.0, 4000.0 / len(u)) if x.shape[1] == 2 else 6.0
            sc = ax.scatter(*x.T, c=vals, s=size, cmap=cmap, vmin=clim[0], vmax=clim[1],
                            marker="s" if x.shape[1] == 2 else "o")
            ax.set(title=title, xlabel="x", ylabel="y")
            if x.shape[1] == 2:
                ax.set_aspect("equal")
            fig.colorbar(sc, ax=ax, shrink=0.8, label="u" if i < 2 else "error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def pixel_std(path: str | Path) -> float:
    """Standard deviation of a PNG's pixel values (0 for a blank image)."""
    import matplotlib.image  # deferred: loads matplotlib

    return float(np.std(matplotlib.image.imread(str(path))))
