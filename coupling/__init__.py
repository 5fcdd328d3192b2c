"""Spiking networks meet FEM: residual estimators, the training loop and run directories.

The public API (names load on first use, so ``neurofem --help`` stays fast)::

    disc = coupling.discretise(problem, residual="galerkin")   # any fem.Problem
    net = spiking.MLP(disc.in_dim, [64, 64, 64], unit=lambda n: spiking.VSN(n))
    result = coupling.fit(net, disc, steps=3000, lr=5e-3)      # MPI, NaN guard, callbacks
    u = disc.to_function(net)                                  # a DOLFINx function

Coarse to fine: ``coupling.fit(net, coupling.Levels([coupling.Level(coarse, steps=300),
coupling.Level(fine, steps=300)]))`` trains the same network through a mesh hierarchy.

A parametric problem (``fem.ParametricProblem``) is made trainable by
``coupling.discretise_parametric`` and trained by the same ``fit``.

Callbacks for ``fit``: :class:`MetricsLog` (metrics.jsonl), :class:`Checkpoints`
(checkpoints and resume), :class:`Progress` (a progress bar). ``neurofem train`` is the
same loop driven by a TOML config (:mod:`coupling.runs.network`).
"""

from meshes.lazy import lazy_names

_LAZY = {
    "discretise": "discretisation",
    "Discretisation": "discretisation",
    "fit": "training.loop",
    "Level": "training.levels",
    "Levels": "training.levels",
    "auto_output_scale": "training.preconditioned",
    "Callback": "training.state",
    "FitResult": "training.state",
    "FitState": "training.state",
    "MetricsLog": "training.callbacks",
    "Checkpoints": "training.callbacks",
    "Progress": "training.callbacks",
    "read_metrics": "training.callbacks",
    "discretise_parametric": "residuals.parametric",
    "ParametricDiscretisation": "residuals.parametric",
}

__getattr__, __dir__, __all__ = lazy_names(__name__, _LAZY)
