"""The data sets the chapters share: scikit-learn's bundled 8×8 digits.

Nothing is downloaded: the 1797 images ship inside scikit-learn.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import check_choice, check_float, check_int

SCALINGS = ("standard", "unit")


class Digits(NamedTuple):
    """A split of the digits. Inputs have shape ``(n, 64)``, labels ``(n,)`` (0–9),
    ``images_test`` shape ``(n_test, 8, 8)`` with the raw values 0–16, for display."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    images_test: np.ndarray

    def to_torch(self) -> Digits:
        """The same split with float32 inputs and int64 labels as PyTorch tensors."""
        import torch

        dtypes = (torch.float32, torch.int64) * 2  # x_train, y_train, x_test, y_test
        tensors = [
            torch.as_tensor(a, dtype=t) for a, t in zip(self[:4], dtypes, strict=True)
        ]
        return Digits(*tensors, self.images_test)


def load_digits(
    test_fraction: float = 0.25, *, scaling: str = "standard", seed: int = 0
) -> Digits:
    """scikit-learn's 8×8 digits, split in a stratified way into train and test.

    Parameters
    ----------
    test_fraction : float
        Share of the images held out for testing, in [0.05, 0.95].
    scaling : {'standard', 'unit'}
        ``'standard'``: every pixel shifted and scaled to mean 0 and standard
        deviation 1 over the training images (pixels blank in all of them are only
        shifted). ``'unit'``: pixel values divided by 16, into [0, 1].
    seed : int
        Seed of the split.

    Returns
    -------
    Digits
        NumPy arrays (float64 inputs, int labels); ``.to_torch()`` converts.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    test_fraction = check_float(
        "test_fraction", test_fraction, minimum=0.05, maximum=0.95
    )
    check_choice("scaling", scaling, SCALINGS)
    seed = check_int("seed", seed, minimum=0)
    digits = sklearn_digits()
    train, test = train_test_split(
        np.arange(len(digits.target)),
        test_size=test_fraction,
        random_state=seed,
        stratify=digits.target,
    )
    x = digits.data.astype(np.float64)
    if scaling == "standard":
        spread = x[train].std(axis=0)
        x = (x - x[train].mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    else:
        x = x / 16.0
    y, images = digits.target, digits.images
    return Digits(x[train], y[train], x[test], y[test], images[test])
