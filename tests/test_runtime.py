"""Tests of the shared runtime: seeds, threads, build detection, the seed convention."""

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from whydeep import _runtime, nets, set_seed, set_threads, single_thread
from whydeep._checks import numpy_generator, torch_generator


def test_set_seed_reproduces_numpy_torch_and_networks():
    set_seed(7)
    a = (np.random.rand(3), torch.rand(3), nets.mlp(3, 4, 3))  # noqa: NPY002
    set_seed(7)
    b = (np.random.rand(3), torch.rand(3), nets.mlp(3, 4, 3))  # noqa: NPY002
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
    for p, q in zip(a[2].parameters(), b[2].parameters(), strict=True):
        assert torch.equal(p, q)


def _blas_threads():
    return {pool["num_threads"] for pool in threadpool_info()}


def test_single_thread_sets_and_restores_torch_and_blas_threads():
    set_threads(2)
    assert torch.get_num_threads() == 2
    with single_thread():
        assert torch.get_num_threads() == 1
        assert _blas_threads() <= {1}
    assert torch.get_num_threads() == 2

    @single_thread()
    def inside():
        return torch.get_num_threads()

    assert inside() == 1
    assert torch.get_num_threads() == 2
    set_threads(1)
    assert torch.get_num_threads() == 1 and _blas_threads() <= {1}


def test_in_book_build_reads_the_environment(monkeypatch):
    monkeypatch.setenv(_runtime.BUILD_ENV, "1")
    assert _runtime.in_book_build()
    assert _runtime.progress_bar(10, "steps") is None
    monkeypatch.delenv(_runtime.BUILD_ENV)
    assert not _runtime.in_book_build()
    assert _runtime.progress_bar(10, "steps") is None  # no notebook kernel here


def test_one_seed_convention_for_ints_and_generators():
    assert torch.equal(
        torch.randn(3, generator=torch_generator(5)),
        torch.randn(3, generator=torch.Generator().manual_seed(5)),
    )
    shared = torch.Generator().manual_seed(0)
    assert torch_generator(shared) is shared  # a generator is used, not copied
    np.testing.assert_array_equal(
        numpy_generator(5).standard_normal(3),
        np.random.default_rng(5).standard_normal(3),
    )
    rng = np.random.default_rng(1)
    assert numpy_generator(rng) is rng


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: set_seed(-1), "seed"),
        (lambda: set_threads(0), "n_threads"),
        (lambda: torch_generator(-3), "seed must be an integer >= 0"),
        (lambda: torch_generator(1.5), "seed"),
        (lambda: torch_generator(np.random.default_rng(0)), "torch.Generator"),
        (lambda: numpy_generator(torch.Generator()), "numpy.random.Generator"),
        (lambda: torch_generator(True, name="noise_seed"), "noise_seed"),
    ],
)
def test_bad_seeds_and_thread_counts_raise_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
