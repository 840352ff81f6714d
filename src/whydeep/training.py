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
from .nets import phi, phi_prime

OPTIMIZERS = ("adam", "sgd", "lbfgs")

#: L-BFGS iterations in one step of :func:`fit` with ``optimizer='lbfgs'``.
LBFGS_ITERATIONS_PER_STEP = 10


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
        ``'lbfgs'`` uses a strong-Wolfe line search; one step is
        ``LBFGS_ITERATIONS_PER_STEP`` L-BFGS iterations.
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
        # One L-BFGS call with max_iter=1 per step stalls (its curvature pairs
        # are not refreshed reliably), so one step here is a short burst of
        # iterations; the tolerances are ours (tol, patience), not the optimiser's.
        opt = torch.optim.LBFGS(
            params,
            lr=lr,
            max_iter=LBFGS_ITERATIONS_PER_STEP,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )

    def closure():
        opt.zero_grad()
        total = loss_fn(model(x), y).sum()
        total.backward()
        return total

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
        if tol > 0 and total < best * (1 - tol):
            best, since_best = total, 0
        else:
            since_best += 1
        if total == 0.0 or (tol > 0 and since_best >= patience):
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


def _residuals_and_jacobian(params, x_t, y, act, slope, bias=False, jacobian=True):
    """Residuals ``(g, n)`` of ``g`` same-shape scalar-output MLPs on the inputs
    ``x_t`` (shape ``(n_in, n)``, one column per sample) and the transposed
    Jacobian ``(g, n_params, n)`` with respect to the flattened ``params``
    (each layer's weight, then its bias when ``bias``; as
    :meth:`~whydeep.nets.BatchedMLP.width_groups` yields them).

    Samples run along the last axis, so every block of the Jacobian is filled
    by long contiguous products (this layout is several times faster than
    one row per sample for networks this narrow).
    """
    weights = params[:: 1 + bias]
    biases = params[1::2] if bias else [None] * len(weights)
    hidden, pre = [x_t.expand(weights[0].shape[0], -1, -1)], []
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = (
            torch.bmm(w, hidden[-1])
            if b is None
            else torch.baddbmm(b[..., None], w, hidden[-1])
        )
        if i < len(weights) - 1:
            pre.append(z)
            hidden.append(act(z))
    residual = z[:, 0, :] - y
    if not jacobian:
        return residual, None
    # reverse accumulation of d output / d pre-activation, all samples at once;
    # the block of a weight is the outer product delta_i h_i^T for every
    # sample, the block of a bias is delta_i itself
    ends = np.cumsum([p[0].numel() for p in params])
    jac_t = torch.empty(z.shape[0], ends[-1], z.shape[2], dtype=z.dtype)
    delta = torch.ones_like(z)
    for i in range(len(weights) - 1, -1, -1):
        j = i * (1 + bias)
        block = jac_t[:, ends[j] - params[j][0].numel() : ends[j]]
        torch.mul(
            delta[:, :, None, :],
            hidden[i][:, None, :, :],
            out=block.unflatten(1, weights[i].shape[1:]),
        )
        if bias:
            jac_t[:, ends[j] : ends[j + 1]] = delta
        if i > 0:
            delta = torch.bmm(weights[i].transpose(1, 2), delta) * slope(pre[i - 1])
    return residual, jac_t


def _damped_gauss_newton_cg(jac_t, grad, damping, scale, n_steps):
    """Approximately solve ``(J^T J + diag(damping)) s = -grad`` per member by
    conjugate gradients preconditioned with ``diag(scale + damping)``
    (``jac_t`` is ``J^T``, shape ``(g, n_params, n)``)."""
    precond = 1.0 / (scale + damping)
    step = torch.zeros_like(grad)
    resid = -grad
    z = precond * resid
    direction = z
    rz = (resid * z).sum(dim=1, keepdim=True)
    tiny = torch.finfo(grad.dtype).tiny
    for _ in range(n_steps):
        jd = torch.bmm(direction[:, None, :], jac_t)
        applied = (jac_t @ jd.transpose(1, 2)).squeeze(2) + damping * direction
        curvature = (direction * applied).sum(dim=1, keepdim=True)
        alpha = rz / curvature.clamp_min(tiny)
        step = step + alpha * direction
        resid = resid - alpha * applied
        z = precond * resid
        rz_next = (resid * z).sum(dim=1, keepdim=True)
        direction = z + rz_next / rz.clamp_min(tiny) * direction
        rz = rz_next
    return step


def fit_levenberg_marquardt(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    max_steps: int = 200,
    tol: float = 1e-3,
    patience: int = 10,
    damping: float = 1e-3,
    direct_max: int = 500,
    cg_steps: int = 8,
    callback: Callable[[int, int], None] | None = None,
) -> History:
    """Train every member of a :class:`~whydeep.nets.BatchedMLP` by Levenberg–Marquardt.

    Each step solves ``(J^T J + λ D) Δ = -J^T r`` for the weights of one member
    (``J`` the Jacobian of its residuals ``r``, ``D`` the diagonal of ``J^T J``),
    accepts the step if the loss falls (then ``λ /= 3``) and rejects it otherwise
    (``λ *= 4``). Members of equal width are stacked into one batched
    solve; every member keeps its own ``λ`` and its own stopping rule, and only its
    real (unpadded) weights enter its system, so each member follows exactly the
    path it would follow if trained alone.

    Parameters
    ----------
    model : BatchedMLP
        With ``n_out == 1``, with or without biases; trained in place. Use float64
        weights: the method reaches losses far below float32 resolution.
    x : torch.Tensor
        Inputs, shape ``(n_samples, n_in)``, shared by all members.
    y : torch.Tensor
        Targets, shape ``(n_samples, 1)`` shared by all members, or
        ``(n_models, n_samples, 1)``, one target set per member.
    max_steps : int
        Upper bound on steps per member (>= 1).
    tol, patience : float, int
        A member stops when ``patience`` accepted steps in a row have not brought
        its loss a relative ``tol`` below its best value, when its loss is
        exactly zero, or when ``λ`` exceeds ``1e12`` (no step helps any more).
    damping : float
        Initial ``λ`` (> 0).
    direct_max : int
        Members with at most this many weights solve their system exactly
        (Cholesky, cost ``n_samples * n_params**2`` per step); larger ones take
        ``cg_steps`` steps of preconditioned conjugate gradients, which only
        multiply by ``J`` and ``J^T`` (cost ``n_samples * n_params`` each).
    cg_steps : int
        See ``direct_max`` (>= 1).
    callback : callable, optional
        ``callback(step, n_still_training)`` after every step (e.g. a progress bar).

    Returns
    -------
    History
        ``loss`` has shape ``(n_steps + 1, n_models)`` (a stopped member repeats
        its final loss); ``extra['steps']`` holds the number of steps each member
        took, ``extra['converged']`` whether it stopped by the rule above and
        ``extra['no_step']`` whether it stopped because ``λ`` exceeded ``1e12``.
    """
    from .nets import BatchedMLP

    if not isinstance(model, BatchedMLP):
        raise ValueError(
            f"model must be a whydeep.nets.BatchedMLP, got {type(model).__name__}"
        )
    if model.weights[-1].shape[1] != 1:
        raise ValueError(
            f"model must have n_out == 1, got {model.weights[-1].shape[1]}"
        )
    max_steps = check_int("max_steps", max_steps, minimum=1)
    tol = check_float("tol", tol, nonnegative=True)
    patience = check_int("patience", patience, minimum=1)
    damping = check_float("damping", damping, positive=True)
    direct_max = check_int("direct_max", direct_max, minimum=0)
    cg_steps = check_int("cg_steps", cg_steps, minimum=1)
    n_models, dtype = model.n_models, model.weights[0].dtype
    n_in = model.weights[0].shape[2]
    if x.dim() != 2 or x.shape[1] != n_in:
        raise ValueError(f"x must have shape (n_samples, {n_in}), got {tuple(x.shape)}")
    n_samples = x.shape[0]
    if y.shape not in ((n_samples, 1), (n_models, n_samples, 1)):
        raise ValueError(
            f"y must have shape ({n_samples}, 1) or ({n_models}, {n_samples}, 1), "
            f"got {tuple(y.shape)}"
        )
    # detached, as width_groups' weights are: nothing here needs autograd
    x_t, y = x.detach().to(dtype).T, y.detach().to(dtype)

    def residuals(params, y, jacobian=True):
        return _residuals_and_jacobian(
            params,
            x_t,
            y,
            lambda z: phi(model.activation, z),
            lambda z: phi_prime(model.activation, z),
            bias=model.biases is not None,
            jacobian=jacobian,
        )

    # members of one width: their indices, their unpadded weights and biases
    # (updated in place) and their targets
    groups = [
        (idx, params, y[idx, :, 0] if y.dim() == 3 else y[:, 0].expand(len(idx), -1))
        for idx, params in model.width_groups()
    ]

    lam = torch.full((n_models,), damping, dtype=dtype)
    loss = torch.empty(n_models, dtype=dtype)
    for idx, params, targets in groups:
        loss[idx] = (residuals(params, targets, jacobian=False)[0] ** 2).mean(dim=1)
    best = loss.clone()
    since_best = torch.zeros(n_models, dtype=torch.long)
    active = torch.ones(n_models, dtype=torch.bool)
    converged = torch.zeros(n_models, dtype=torch.bool)
    no_step = torch.zeros(n_models, dtype=torch.bool)
    taken = torch.zeros(n_models, dtype=torch.long)
    losses = [loss.numpy().copy()]
    for _step in range(max_steps):
        if not active.any():
            break
        previous = loss.clone()
        for idx, params, targets in groups:
            live = active[idx]
            if not live.any():
                continue
            members = idx[live]
            live_params = [p[live] for p in params]
            r, jac_t = residuals(live_params, targets[live])
            grad = (jac_t @ r[..., None]).squeeze(2)
            direct = jac_t.shape[1] <= direct_max
            if direct:
                system = jac_t @ jac_t.transpose(1, 2)
                diag = system.diagonal(dim1=1, dim2=2)
            else:
                diag = torch.einsum("gpn,gpn->gp", jac_t, jac_t)
            scale = diag + 1e-9 * diag.mean(dim=1, keepdim=True)
            if direct:
                system = system + torch.diag_embed(lam[members, None] * scale)
                chol, info = torch.linalg.cholesky_ex(system)
                step = -torch.cholesky_solve(grad[..., None], chol).squeeze(2)
            else:
                step = _damped_gauss_newton_cg(
                    jac_t, grad, lam[members, None] * scale, scale, cg_steps
                )
                info = torch.zeros(len(members), dtype=torch.int32)
            sizes = [p[0].numel() for p in live_params]
            trial = [
                w + s.view_as(w)
                for w, s in zip(live_params, step.split(sizes, dim=1), strict=True)
            ]
            r_new, _ = residuals(trial, targets[live], jacobian=False)
            new_loss = (r_new**2).mean(dim=1)
            accept = (new_loss < loss[members]) & (info == 0)
            for w, old, new in zip(params, live_params, trial, strict=True):
                keep = accept.view(-1, *[1] * (new.dim() - 1))
                w[live] = torch.where(keep, new, old)
            loss[members] = torch.where(accept, new_loss, loss[members])
            lam[members] = torch.where(accept, lam[members] / 3, lam[members] * 4)
        taken += active.long()
        improved = loss < best * (1 - tol)
        best = torch.where(improved, loss, best)
        # a rejected step only raises λ: it says nothing yet about a plateau
        stalled = active & (loss == previous) & (lam <= 1e12)
        since_best = torch.where(improved, 0, since_best + (~stalled).long())
        done = active & ((since_best >= patience) | (loss == 0) | (lam > 1e12))
        converged |= done
        no_step |= done & (lam > 1e12)
        active &= ~done
        losses.append(loss.numpy().copy())
        if callback is not None:
            callback(len(losses) - 1, int(active.sum()))

    for idx, params, _ in groups:
        model.set_members(idx, params)
    return History(
        loss=np.array(losses),
        steps=np.arange(len(losses)),
        converged=bool(converged.all()),
        extra={
            "steps": taken.numpy(),
            "converged": converged.numpy(),
            "no_step": no_step.numpy(),
        },
    )
