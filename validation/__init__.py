"""Network vs FEM: errors, conservation, elasticity metrics, figures and reports.

>>> print(validation.compare(problem, disc.to_function(net)))   # doctest: +SKIP
custom (P1): rel. L2 2.1e-03; H1 ...; imbalance network ... / FEM ...

Names load on first use: :func:`compare` (:mod:`validation.evaluate`), errors
(:mod:`validation.errors`), conservation checks (:mod:`validation.conservation`),
PyVista figures (:mod:`validation.figures`), reports (:mod:`validation.report`).
"""

from meshes.lazy import lazy_names

_LAZY = {"compare": "evaluate", "Comparison": "evaluate", "mesh_statistics": "evaluate"}

__getattr__, __dir__, __all__ = lazy_names(__name__, _LAZY)
