"""whydeep: the computations behind the book *Why Deep?*.

Shared pieces live in :mod:`whydeep.nets` (building networks),
:mod:`whydeep.training` (full-batch training loops) and :mod:`whydeep.plotting`
(the figure style and interactive figures); each chapter of the book has a
module of the same name.
"""

from .nets import count_params, mlp, n_params, set_seed

__all__ = ["count_params", "mlp", "n_params", "set_seed"]
__version__ = "0.1.0"
