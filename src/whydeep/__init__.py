"""whydeep: the computations behind the book *Why Deep?*.

Shared pieces live in :mod:`whydeep.nets` (building networks and the activation
table), :mod:`whydeep.training` (full-batch training loops), :mod:`whydeep.plotting`
(the figure style and interactive figures), :mod:`whydeep.meanfield` (mean-field
maps of random networks), :mod:`whydeep.data` (the digits), :mod:`whydeep.engine`
(a scalar reverse-mode engine) and ``whydeep._runtime`` (threads, seeds, build
detection); each chapter of the book has a module of the same name.
"""

from ._runtime import set_seed, set_threads, single_thread
from .nets import count_params, mlp, n_params

__all__ = [
    "count_params",
    "mlp",
    "n_params",
    "set_seed",
    "set_threads",
    "single_thread",
]
__version__ = "0.1.0"
