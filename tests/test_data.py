"""Tests of the shared digits loader."""

import numpy as np
import pytest
import torch

from whydeep.data import Digits, load_digits


def test_split_is_stratified_and_the_same_for_every_scaling():
    standard = load_digits(0.25, seed=0)
    unit = load_digits(0.25, scaling="unit", seed=0)
    assert isinstance(standard, Digits)
    assert len(standard.y_train) + len(standard.y_test) == 1797
    assert len(standard.y_test) == 450
    np.testing.assert_array_equal(standard.y_test, unit.y_test)
    np.testing.assert_array_equal(standard.images_test, unit.images_test)
    # every class keeps its share of the test set (stratified)
    totals = np.bincount(np.concatenate([standard.y_train, standard.y_test]))
    counts = np.bincount(standard.y_test, minlength=10)
    assert np.all(np.abs(counts - totals / 4) <= 1)
    # the raw test images are the unit-scaled test inputs times 16
    np.testing.assert_allclose(unit.images_test.reshape(-1, 64) / 16, unit.x_test)


def test_scalings():
    standard = load_digits()
    np.testing.assert_allclose(standard.x_train.mean(axis=0), 0, atol=1e-12)
    spread = standard.x_train.std(axis=0)
    assert np.all((np.abs(spread - 1) < 1e-12) | (spread == 0))
    unit = load_digits(scaling="unit")
    assert unit.x_train.min() == 0 and unit.x_train.max() == 1


def test_to_torch_gives_float32_inputs_and_int64_labels():
    digits = load_digits().to_torch()
    assert digits.x_train.dtype == torch.float32
    assert digits.y_test.dtype == torch.int64
    assert isinstance(digits.images_test, np.ndarray)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"scaling": "minmax"}, "scaling"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_digits(**kwargs)
