"""How the book's code runs: threads, seeds, and whether the book is being built.

Every chapter starts with the same lines::

    from whydeep import plotting, set_seed, set_threads

    plotting.use_style()
    set_seed(0)
    set_threads(1)
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ._checks import check_int, torch_generator

#: Environment variable that marks a build of the book (set by the build, and by
#: the notebook checks that compare against it).
BUILD_ENV = "WHYDEEP_BUILD"


def set_threads(n_threads: int) -> None:
    """Let PyTorch and NumPy's linear algebra use ``n_threads`` threads from now on.

    The book's matrices are small: a second thread saves little arithmetic, and
    on a busy machine waiting for it can cost more than the work itself. One
    thread also makes timings steadier.
    """
    n_threads = check_int("n_threads", n_threads, minimum=1)
    torch.set_num_threads(n_threads)
    threadpool_limits(limits=n_threads)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run on one thread inside the block (or decorated function), then restore
    the previous thread counts."""
    previous = torch.get_num_threads()
    with threadpool_limits(limits=1):
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def set_seed(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and PyTorch's global random number generators.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Returns
    -------
    torch.Generator
        A fresh generator seeded with ``seed``, for code that prefers an explicit
        generator to the global state.
    """
    seed = check_int("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeding the legacy global state is the point)
    torch.manual_seed(seed)
    return torch_generator(seed)


def in_book_build() -> bool:
    """True while the book is being built (or checked against the built pages)."""
    return os.environ.get(BUILD_ENV, "") == "1"


def progress_bar(max_steps: int, description: str):
    """A callback ``update(step, n_still_running)`` drawing an ``ipywidgets`` bar
    in a live notebook; ``None`` in a script, under pytest and in a book build."""
    if in_book_build():
        return None
    try:
        import ipywidgets
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    bar = ipywidgets.IntProgress(min=0, max=max_steps, description=description)
    display(bar)

    def update(step: int, n_running: int) -> None:
        bar.value = step
        if n_running == 0:
            bar.bar_style = "success"

    return update
