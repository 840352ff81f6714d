"""Full-batch training loops that return their history.

The book's networks are small and its data sets fit in memory, so every loop
here is full batch: one step sees all the data. Per-step overhead dominates at
this size, which is why :class:`whydeep.nets.BatchedMLP` trains whole sweeps as
one computation, and why :func:`fit` offers L-BFGS, which converges in far fewer
steps than Adam on smooth full-batch problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_float, check_int

OPTIMIZERS = ("adam", "sgd", "lbfgs")


@dataclass
class History:
    """What a training run recorded.

    Attributes
    ----------
    loss : numpy.ndarray
        Training loss after each recorded step, shape ``(n_records,)`` for one
        network or ``(n_records, n_models)`` for a batched one.
    steps : numpy.ndarray
        The optimiser step of each record, shape ``(n_records,)``.
    converged : bool
        Whether training stopped because the loss stopped improving (rather than
        because ``max_steps`` ran out).
    extra : dict
        Whatever the ``record`` callback returned, keyed by name, one entry per record.
    """

    loss: np.ndarray
    steps: np.ndarray
    converged: bool
    extra: dict = field(default_factory=dict)

    @property
    def final_loss(self):
        """The last recorded loss (a float, or an array with one value per model)."""
        return self.loss[-1]


def mse_per_model(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error, one value per model for batched predictions.

    ``prediction`` of shape ``(n_samples, n_out)`` gives a scalar; shape
    ``(n_models, n_samples, n_out)`` gives a vector of length ``n_models``.
    ``target`` broadcasts against ``prediction``.
    """
    err = (prediction - target) ** 2
    if prediction.dim() == 3:
        return err.mean(dim=(1, 2))
    return err.mean()


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: str = "adam",
    lr: float = 1e-3,
    max_steps: int = 1000,
    tol: float = 0.0,
    patience: int = 50,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse_per_model,
    record_every: int = 1,
    record: Callable[[nn.Module], dict] | None = None,
) -> History:
    """Train ``model`` on ``(x, y)`` with full-batch steps.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``x`` to predictions; a :class:`~whydeep.nets.BatchedMLP` is trained
        as independent members (their losses are summed, so their gradients do
        not mix; with ``'adam'`` or ``'sgd'`` each member follows exactly the path
        it would follow alone).
    x, y : torch.Tensor
        Inputs and targets, used whole at every step.
    optimizer : {'adam', 'sgd', 'lbfgs'}
        ``'lbfgs'`` uses a strong-Wolfe line search; one step is one L-BFGS
        iteration.
    lr : float
        Learning rate (> 0).
    max_steps : int
        Upper bound on optimiser steps (>= 1).
    tol : float
        Stop when the total loss has not fallen by a relative ``tol`` below its
        best value for ``patience`` consecutive steps (0 disables the test), or
        when it reaches exactly zero.
    patience : int
        See ``tol`` (>= 1).
    loss_fn : callable
        ``loss_fn(prediction, y)`` returning a scalar or one loss per model.
    record_every : int
        Record the loss every this many steps (the last step is always recorded).
    record : callable, optional
        ``record(model)`` returning a dict of numbers or arrays to store at every
        recorded step, in ``History.extra``.

    Returns
    -------
    History
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    lr = check_float("lr", lr, positive=True)
    max_steps = check_int("max_steps", max_steps, minimum=1)
    tol = check_float("tol", tol, nonnegative=True)
    patience = check_int("patience", patience, minimum=1)
    record_every = check_int("record_every", record_every, minimum=1)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters, got none")

    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr)
    else:
        opt = torch.optim.LBFGS(
            params, lr=lr, max_iter=1, history_size=50, line_search_fn="strong_wolfe"
        )

    def closure():
        opt.zero_grad()
        per_model = loss_fn(model(x), y)
        per_model.sum().backward()
        return per_model.sum()

    losses, steps, extra = [], [], {}

    def take_record(step):
        with torch.no_grad():
            per_model = loss_fn(model(x), y)
        losses.append(per_model.detach().cpu().numpy().copy())
        steps.append(step)
        if record is not None:
            for key, value in record(model).items():
                extra.setdefault(key, []).append(np.asarray(value))

    best, since_best, converged = float("inf"), 0, False
    take_record(0)
    for step in range(1, max_steps + 1):
        total = float(opt.step(closure).detach())
        if step % record_every == 0 or step == max_steps:
            take_record(step)
        if total == 0.0:
            converged = True
            break
        if tol > 0:
            if total < best * (1 - tol):
                best, since_best = total, 0
            else:
                since_best += 1
                if since_best >= patience:
                    converged = True
                    break
    if steps[-1] != step:
        take_record(step)
    return History(
        loss=np.array(losses),
        steps=np.array(steps),
        converged=converged,
        extra={k: np.array(v) for k, v in extra.items()},
    )
