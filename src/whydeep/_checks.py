"""Argument checks shared by the public functions of the package.

Every check raises ``ValueError`` with a message that names the argument, the
value it received and what was expected, so that a wrong call fails at the
public surface instead of deep inside PyTorch.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable


def check_int(
    name: str, value, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return value


def check_float(
    name: str,
    value,
    *,
    positive: bool = False,
    nonnegative: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, or raise ``ValueError``."""
    choices = tuple(choices)
    if value not in choices:
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {expected}, got {value!r}")
    return value


def check_seed(seed, name: str = "seed"):
    """Return ``seed`` if it is a non-negative int or a generator (NumPy's or
    PyTorch's), or raise ``ValueError`` naming ``name``."""
    import numpy as np
    import torch

    if isinstance(seed, torch.Generator | np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(
            f"{name} must be an integer >= 0 or a random generator, got {seed!r}"
        )
    return int(seed)


def torch_generator(seed, name: str = "seed"):
    """The book's one ``seed`` convention, for PyTorch: an int gives a fresh
    ``torch.Generator`` seeded with it; a ``torch.Generator`` is used as it is
    (its state advances), so that several calls can share one stream; None means
    PyTorch's global generator and is returned as it is."""
    import torch

    if seed is None:
        return None
    seed = check_seed(seed, name)
    if isinstance(seed, torch.Generator):
        return seed
    if not isinstance(seed, int):
        raise ValueError(f"{name} must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def numpy_generator(seed, name: str = "seed"):
    """As :func:`torch_generator`, for NumPy: an int gives
    ``numpy.random.default_rng(seed)``, a ``numpy.random.Generator`` is used as it is."""
    import numpy as np

    seed = check_seed(seed, name)
    if isinstance(seed, np.random.Generator):
        return seed
    if not isinstance(seed, int):
        raise ValueError(
            f"{name} must be an int or a numpy.random.Generator, got {seed!r}"
        )
    return np.random.default_rng(seed)
