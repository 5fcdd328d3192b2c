"""Residual estimators, one module per kind: a network's outputs at mesh points → a loss.

:mod:`~coupling.residuals.base` holds what they share (the :class:`Residual` protocol, the
builder context, sparse operators, batch weights, soft Dirichlet terms);
:func:`coupling.discretise` picks a kind's builder from
:data:`coupling.discretisation.RESIDUALS`.
"""
