"""Initialisation rules: the variance of random weights that keeps signals alive.

A layer ``a = W h`` with independent zero-mean weights of variance ``std**2``
multiplies the second moment of its input by ``fan_in * std**2`` on the way
forward and the second moment of the gradient by ``fan_out * std**2`` on the way
back. Every rule here is a choice of ``std`` that sets one of those factors (or a
compromise between them) to one, corrected by a *gain* for the activation that
follows the layer. The module gives the rules, applies them to networks, and
measures second moments and gradients layer by layer, to compare with the
mean-field predictions of :mod:`whydeep.meanfield`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import meanfield as mf
from ._checks import check_choice, check_float, check_int, torch_generator
from .nets import ACTIVATIONS, FANS, BatchedMLP, phi, phi_prime

#: The weight rules, by name (see :func:`init_std`).
RULES = tuple(FANS)


def activation_gain(activation: str) -> float:
    """The gain that makes a layer followed by ``activation`` preserve the second moment.

    ``'linear'`` and ``'tanh'`` (whose slope at zero is one) get 1, ``'relu'``
    gets ``sqrt(2)`` because ReLU keeps half of the second moment of a symmetric input.
    """
    check_choice("activation", activation, ACTIVATIONS)
    return math.sqrt(2.0) if activation == "relu" else 1.0


def init_std(
    rule: str,
    fan_in: int,
    fan_out: int,
    activation: str = "linear",
    *,
    gain: float | None = None,
) -> float:
    """Standard deviation of the weights of one layer under ``rule``.

    Parameters
    ----------
    rule : {'fan_in', 'fan_out', 'glorot', 'sum_fan', 'max_fan', 'uniform_heuristic'}
        ``'fan_in'``: ``gain / sqrt(fan_in)`` (LeCun; He for ReLU).
        ``'fan_out'``: ``gain / sqrt(fan_out)`` (the backward-pass rule).
        ``'glorot'``: ``gain * sqrt(2 / (fan_in + fan_out))``.
        ``'sum_fan'``: ``gain / sqrt(fan_in + fan_out)`` (a scale ``gain`` over the total fan).
        ``'max_fan'``: ``gain / sqrt(max(fan_in, fan_out))``.
        ``'uniform_heuristic'``: ``gain / sqrt(3 * fan_in)``, the standard deviation of
        the uniform distribution on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` times ``gain``.
    fan_in, fan_out : int
        Number of inputs and outputs of the layer (>= 1).
    activation : {'linear', 'tanh', 'relu'}
        The activation after the layer; sets the default gain.
    gain : float, optional
        Overrides :func:`activation_gain` (> 0).

    Returns
    -------
    float
    """
    check_choice("rule", rule, RULES)
    fan_in = check_int("fan_in", fan_in, minimum=1)
    fan_out = check_int("fan_out", fan_out, minimum=1)
    default_gain = activation_gain(activation)
    gain = default_gain if gain is None else check_float("gain", gain, positive=True)
    return gain / math.sqrt(FANS[rule](fan_in, fan_out))


@dataclass
class Signals:
    """What flows through a network on one forward and one backward pass.

    With ``L`` linear layers, lists are indexed by layer:

    Attributes
    ----------
    inputs : list of torch.Tensor
        ``h^0 = x, h^1, ..., h^L``: the input, then each layer's output *after* its
        activation (for an :func:`whydeep.nets.mlp`, the last one is the network
        output). Shapes ``(n_samples, n_l)``.
    preactivations : list of torch.Tensor
        ``a^1, ..., a^L`` with ``a^l = W^l h^(l-1)``.
    input_gradients : list of torch.Tensor
        ``dloss/dh^l`` for ``l = 0, ..., L``, where the loss is ``sum(h^L * r)``
        with the output gradient ``r``.
    preactivation_gradients : list of torch.Tensor
        ``dloss/da^l`` for ``l = 1, ..., L``.
    """

    inputs: list
    preactivations: list
    input_gradients: list
    preactivation_gradients: list


def propagate(
    net: nn.Sequential,
    x: torch.Tensor,
    output_gradient: torch.Tensor | None = None,
    *,
    seed=None,
) -> Signals:
    """Run ``x`` forward through ``net`` and back-propagate ``output_gradient``.

    Parameters
    ----------
    net : torch.nn.Sequential
        ``nn.Linear`` layers, each optionally followed by activation modules.
    x : torch.Tensor
        Inputs, shape ``(n_samples, n_0)``.
    output_gradient : torch.Tensor, optional
        Gradient of the loss with respect to the network output, shape of the
        output. When omitted, i.i.d. standard normal entries drawn from
        ``seed``: the backward pass then starts with unit variance, as the
        forward pass does.

    Returns
    -------
    Signals
    """
    if not isinstance(net, nn.Sequential):
        raise ValueError(f"net must be an nn.Sequential, got {type(net).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        raise ValueError(
            f"x must be a 2-D tensor (n_samples, n_in), got {type(x).__name__}"
        )
    h = x.detach().clone().requires_grad_(True)
    inputs, preacts = [h], []
    for module in net:
        h = module(h)
        if isinstance(module, nn.Linear):
            preacts.append(h)
            inputs.append(h)
        else:
            inputs[-1] = h
    if len(preacts) == 0:
        raise ValueError("net must contain at least one nn.Linear layer")
    if output_gradient is None:
        output_gradient = torch.randn(
            h.shape, generator=torch_generator(seed), dtype=h.dtype
        )
    if output_gradient.shape != h.shape:
        raise ValueError(
            f"output_gradient must have shape {tuple(h.shape)}, got {tuple(output_gradient.shape)}"
        )
    grads = torch.autograd.grad(h, inputs + preacts, grad_outputs=output_gradient)
    n = len(inputs)
    return Signals(
        inputs=[t.detach() for t in inputs],
        preactivations=[t.detach() for t in preacts],
        input_gradients=list(grads[:n]),
        preactivation_gradients=list(grads[n:]),
    )


def _layer_weights(
    seed: int, layer: int, n_networks: int, fan_in: int, fan_out: int, std: float
):
    # one generator per layer: a layer's weights do not depend on the widths of the others
    generator = torch_generator(seed * 1_000_003 + layer)
    return torch.randn(n_networks, fan_out, fan_in, generator=generator) * std


@dataclass
class EnsembleProfiles:
    """Per-layer second moments in an ensemble of independent random networks.

    Attributes
    ----------
    forward : numpy.ndarray
        ``E[(h^l)^2]`` per network, shape ``(n_networks, L + 1)``, the input first;
        the mean is over the samples and units of one network.
    backward : numpy.ndarray
        ``E[(dloss/dh^l)^2]`` per network, same shape, the output gradient last.
    preactivations, gradients : dict
        Layer ``l`` (for each ``l`` in ``keep_layers``) -> the pre-activation
        ``a^l`` and the gradient ``dloss/dh^l`` arriving at the layer's output,
        shape ``(n_networks, n_samples, n_l)``.
    """

    forward: np.ndarray
    backward: np.ndarray
    preactivations: dict
    gradients: dict

    @property
    def forward_mean(self) -> np.ndarray:
        """Ensemble mean of :attr:`forward`: the variance the derivation speaks of."""
        return self.forward.mean(axis=0)

    @property
    def backward_mean(self) -> np.ndarray:
        """Ensemble mean of :attr:`backward`."""
        return self.backward.mean(axis=0)


def ensemble_profiles(
    widths,
    activation: str,
    rule: str = "fan_in",
    *,
    variance_scale: float = 1.0,
    gain: float | None = None,
    n_networks: int = 8,
    n_samples: int = 32,
    seed: int = 0,
    keep_layers=(),
    backward: bool = True,
) -> EnsembleProfiles:
    """Forward and backward second moments, layer by layer, in ``n_networks`` random stacks.

    Each member is an :func:`whydeep.nets.mlp` with ``output_activation=activation``
    (every layer followed by ``activation``) and weights drawn under ``rule``
    (:func:`init_std`, times ``sqrt(variance_scale)``); inputs and the gradient arriving at the
    output are i.i.d. standard normal. The backward pass is back-propagation
    written out, ``dloss/dh^(l-1) = W^T (phi'(a^l) * dloss/dh^l)``, with the same
    weights as the forward pass.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, ..., n_L]``: input size, then the output size of each layer.
    activation, rule, gain
        As in :func:`init_std`.
    variance_scale : float, default 1
        Multiplies the variance the rule asks for.
    n_networks, n_samples : int
        Ensemble size and inputs per network.
    seed : int
        Seeds inputs, weights and output gradients.
    keep_layers : iterable of int
        Layers (1..L) whose pre-activations and gradients are returned whole.
    backward : bool, default True
        Whether to run the backward pass (without it, ``backward`` is all NaN and
        no gradients are kept; the forward pass alone does not keep the weights,
        so its memory does not grow with depth).

    Returns
    -------
    EnsembleProfiles
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("rule", rule, RULES)
    widths = [check_int("widths[i]", w, minimum=1) for w in widths]
    if len(widths) < 2:
        raise ValueError(f"widths must list at least two sizes, got {widths!r}")
    variance_scale = check_float("variance_scale", variance_scale, positive=True)
    n_networks = check_int("n_networks", n_networks, minimum=1)
    n_samples = check_int("n_samples", n_samples, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    depth = len(widths) - 1
    keep = {
        check_int("keep_layers[i]", k, minimum=1, maximum=depth) for k in keep_layers
    }
    scale = math.sqrt(variance_scale)
    generator = torch_generator(seed)
    h = torch.randn(n_networks, n_samples, widths[0], generator=generator)
    forward, kept_a, saved = [h.pow(2).mean(dim=(1, 2))], {}, []
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(widths), start=1):
        std = init_std(rule, fan_in, fan_out, activation, gain=gain) * scale
        w = _layer_weights(seed, layer, n_networks, fan_in, fan_out, std)
        a = torch.bmm(h, w.transpose(1, 2))
        h = phi(activation, a)
        forward.append(h.pow(2).mean(dim=(1, 2)))
        if backward:  # what the backward pass needs: the weights and the slopes
            saved.append((w, phi_prime(activation, a)))
        if layer in keep:
            kept_a[layer] = a
    gradients, kept_g = [torch.full((n_networks,), math.nan)] * (depth + 1), {}
    if backward:
        g = torch.randn(n_networks, n_samples, widths[-1], generator=generator)
        gradients = [g.pow(2).mean(dim=(1, 2))]
        for layer in range(depth, 0, -1):
            if layer in keep:
                kept_g[layer] = g
            w, slope = saved[layer - 1]
            g = torch.bmm(slope * g, w)
            gradients.insert(0, g.pow(2).mean(dim=(1, 2)))
    return EnsembleProfiles(
        forward=torch.stack(forward, dim=1).double().numpy(),
        backward=torch.stack(gradients, dim=1).double().numpy(),
        preactivations=kept_a,
        gradients=kept_g,
    )


def single_layer_moments(
    n_in: int,
    sigma: float,
    v: float,
    *,
    n_trials: int = 100_000,
    seed=None,
) -> dict:
    """Monte Carlo check of one unit ``a = sum_i w_i x_i``.

    Draws ``n_trials`` independent pairs of weights ``w ~ N(0, sigma**2)`` and
    inputs ``x ~ N(0, v**2)`` (``n_in`` of each per trial).

    Returns
    -------
    dict
        ``'var_a'``: sample variance of ``a``; ``'relu_second_moment'``: sample
        mean of ``ReLU(a)**2``; ``'relu_var'``: sample variance of ``ReLU(a)``;
        ``'theory'``: ``n_in * sigma**2 * v**2``.
    """
    n_in = check_int("n_in", n_in, minimum=1)
    sigma = check_float("sigma", sigma, positive=True)
    v = check_float("v", v, positive=True)
    n_trials = check_int("n_trials", n_trials, minimum=2)
    generator = torch_generator(seed)
    # draw in chunks of about a million numbers: memory stays small for any n_in
    chunk = max(1, 1_000_000 // n_in)
    pieces = []
    for start in range(0, n_trials, chunk):
        rows = min(chunk, n_trials - start)
        w = torch.randn(rows, n_in, generator=generator, dtype=torch.float64) * sigma
        x = torch.randn(rows, n_in, generator=generator, dtype=torch.float64) * v
        pieces.append((w * x).sum(dim=1))
    a = torch.cat(pieces)
    relu_a = a.clamp(min=0)
    return {
        "var_a": float(a.var()),
        "relu_second_moment": float(relu_a.pow(2).mean()),
        "relu_var": float(relu_a.var()),
        "theory": n_in * sigma**2 * v**2,
    }


def perturbation_growth(net: nn.Sequential, x: torch.Tensor, direction: torch.Tensor):
    """Per-layer growth of an infinitesimal perturbation of the inputs.

    Pushes the tangent vector ``direction`` through the Jacobian of every layer
    (a forward-mode derivative) and returns, for each layer ``l``, the ratio
    ``|dh^l|^2 / |dh^(l-1)|^2`` summed over samples, shape ``(L,)``.
    """
    if x.shape != direction.shape:
        raise ValueError(
            f"direction must have the shape of x {tuple(x.shape)}, got {tuple(direction.shape)}"
        )
    modules = list(net)
    norms = [float(direction.double().pow(2).sum())]
    h, dh = x, direction
    for k, module in enumerate(modules):
        h, dh = torch.func.jvp(module, (h,), (dh,))
        last_of_layer = k + 1 == len(modules) or isinstance(modules[k + 1], nn.Linear)
        if last_of_layer:
            norms.append(float(dh.detach().double().pow(2).sum()))
    norms = np.array(norms)
    return norms[1:] / norms[:-1]


def plot_profiles(ax, profiles: dict, *, theory: dict | None = None, ylabel: str = ""):
    """Per-layer second moments on a log scale, one line per entry of ``profiles``.

    ``theory`` maps the same labels to predicted curves, drawn dashed in the same colour.
    """
    for k, (label, values) in enumerate(profiles.items()):
        ax.semilogy(np.arange(len(values)), values, label=label, color=f"C{k}")
        if theory is not None and label in theory:
            curve = theory[label]
            ax.semilogy(
                np.arange(len(curve)), curve, "--", color=f"C{k}", linewidth=1.2
            )
    ax.set_xlabel("layer l")
    ax.set_ylabel(ylabel)


def plot_histograms(ax, tensors: dict, *, value_range: float, bins: int = 81):
    """Overlaid step histograms of several tensors on ``[-value_range, value_range]``.

    Heights are densities of *all* values, so mass outside the range is missing
    from the picture rather than piled up at its edges.
    """
    value_range = check_float("value_range", value_range, positive=True)
    bins = check_int("bins", bins, minimum=1)
    edges = np.linspace(-value_range, value_range, bins + 1)
    for label, t in tensors.items():
        values = t.detach().double().flatten().numpy()
        counts, _ = np.histogram(values, bins=edges)
        ax.stairs(counts / (values.size * np.diff(edges)), edges, label=label)
    ax.set_xlim(-value_range, value_range)


# --------------------------------------------------------------------------
# Orthogonal weights and the input-output Jacobian
# --------------------------------------------------------------------------


def orthogonal_(
    weight: torch.Tensor,
    gain: float = 1.0,
    *,
    seed=None,
) -> torch.Tensor:
    """Fill ``weight`` (2-D, or a batch ``(..., n_out, n_in)``) with orthogonal matrices.

    Each matrix is the ``Q`` of the QR decomposition of a standard Gaussian matrix,
    its columns' signs fixed so that ``R`` has a positive diagonal (which makes ``Q``
    uniformly distributed, Haar), times ``gain``. A wide matrix (``n_out < n_in``)
    gets orthonormal rows, a tall one orthonormal columns. For one matrix the draws
    are those of ``torch.nn.init.orthogonal_`` given the same generator
    (``seed``: an int, a ``torch.Generator`` or None, the book's convention).
    Returns ``weight``.
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() < 2:
        raise ValueError(
            f"weight must be a tensor with at least 2 dimensions, got "
            f"{type(weight).__name__} of shape {tuple(getattr(weight, 'shape', ()))}"
        )
    gain = check_float("gain", gain, positive=True)
    generator = torch_generator(seed)
    rows, cols = weight.shape[-2:]
    with torch.no_grad():
        z = torch.empty_like(weight).normal_(0.0, 1.0, generator=generator)
        if rows < cols:
            z = z.mT
        q, r = torch.linalg.qr(z)
        q = q * torch.diagonal(r, dim1=-2, dim2=-1).sign().unsqueeze(-2)
        if rows < cols:
            q = q.mT
        weight.copy_(q * gain)
    return weight


@dataclass
class JacobianSpectra:
    """Singular values of the input-output Jacobian of random networks.

    Attributes
    ----------
    depths : numpy.ndarray of int
        Numbers of layers ``L`` at which the spectrum was taken.
    singular_values : numpy.ndarray, shape (n_depths, n_networks, width)
        Singular values of ``dh^L / dh^0`` at one input, largest first.
    """

    depths: np.ndarray
    singular_values: np.ndarray

    def spread(self) -> np.ndarray:
        """Relative variance of the squared singular values, per depth.

        ``Var(lambda) / E[lambda]**2`` over the eigenvalues ``lambda = s**2`` of
        ``J J^T`` of all networks: 0 for a perfectly flat spectrum, whatever its
        scale; ``L`` for a product of ``L`` wide Gaussian matrices of gain 1.
        """
        lam = self.singular_values.reshape(len(self.depths), -1) ** 2
        return lam.var(axis=1) / lam.mean(axis=1) ** 2


def critical_gain(sigma_b: float) -> float:
    """The gain ``sigma_w`` at which a ``tanh`` network with bias scale ``sigma_b``
    sits at the edge of chaos, ``chi_1(sigma_w, sigma_b) = 1`` (by bisection on
    :func:`whydeep.meanfield.chi1`, to 1e-12)."""
    sigma_b = check_float("sigma_b", sigma_b, nonnegative=True, maximum=2.0)
    low, high = 0.5, 4.0  # chi_1 < 1 at 0.5 and > 1 at 4 for sigma_b <= 2
    while high - low > 1e-12:
        middle = 0.5 * (low + high)
        if float(mf.chi1(middle, sigma_b)) < 1.0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def jacobian_spectra(
    depths,
    width: int,
    activation: str = "linear",
    weights: str = "gaussian",
    *,
    gain: float = 1.0,
    sigma_b: float = 0.0,
    n_networks: int = 4,
    input_second_moment: float = 1.0,
    seed: int = 0,
) -> JacobianSpectra:
    """Singular values of ``J = dh^L / dh^0`` in bias-free networks of constant width.

    Layer ``l`` computes ``h^l = phi(W^l h^(l-1) + b^l)``, biases ``N(0, sigma_b**2)``,
    with ``W^l`` either Gaussian,
    ``N(0, gain**2 / width)`` per entry, or ``gain`` times a Haar orthogonal matrix
    (:func:`orthogonal_`): both have ``E[W^T W] = gain**2 I``. The Jacobian at one
    input ``h^0`` (i.i.d. ``N(0, input_second_moment)``) is
    ``J = D^L W^L ... D^1 W^1`` with ``D^l = diag(phi'(a^l))`` at the pre-activations
    ``a^l``, built up one
    layer at a time, ``n_networks`` networks at once.

    Parameters
    ----------
    depths : sequence of int
        Numbers of layers at which to take the spectrum (each >= 1).
    width : int
        Units per layer (>= 1).
    activation : {'linear', 'tanh', 'relu'}
    weights : {'gaussian', 'orthogonal'}
    gain : float, default 1
        ``sigma_w``, the gain of the weights (> 0).
    sigma_b : float, default 0
        Standard deviation of the biases (>= 0).
    n_networks : int, default 4
    input_second_moment : float, default 1
    seed : int, default 0

    Returns
    -------
    JacobianSpectra
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("weights", weights, ("gaussian", "orthogonal"))
    depths = sorted({check_int("depths[i]", d, minimum=1) for d in depths})
    if not depths:
        raise ValueError("depths must list at least one depth, got []")
    width = check_int("width", width, minimum=1)
    gain = check_float("gain", gain, positive=True)
    sigma_b = check_float("sigma_b", sigma_b, nonnegative=True)
    n_networks = check_int("n_networks", n_networks, minimum=1)
    input_second_moment = check_float(
        "input_second_moment", input_second_moment, positive=True
    )
    generator = torch_generator(seed)
    dtype = torch.float64
    h = torch.randn(n_networks, width, 1, generator=generator, dtype=dtype)
    h = h * math.sqrt(input_second_moment)
    jac = torch.eye(width, dtype=dtype).expand(n_networks, -1, -1)
    spectra = []
    for layer in range(1, depths[-1] + 1):
        w = torch.empty(n_networks, width, width, dtype=dtype)
        if weights == "orthogonal":
            orthogonal_(w, gain, seed=generator)
        else:
            w.normal_(0.0, gain / math.sqrt(width), generator=generator)
        b = torch.randn(n_networks, width, 1, generator=generator, dtype=dtype)
        a = w @ h + sigma_b * b
        h = phi(activation, a)
        jac = phi_prime(activation, a) * (w @ jac)  # D^l W^l J: D scales rows
        if layer in depths:
            spectra.append(torch.linalg.svdvals(jac))
    return JacobianSpectra(
        depths=np.array(depths), singular_values=torch.stack(spectra).numpy()
    )


# --------------------------------------------------------------------------
# Many classifiers of different depths, trained as one batched computation
# --------------------------------------------------------------------------


@dataclass
class StackRuns:
    """What :func:`train_stack` recorded.

    Attributes
    ----------
    steps : numpy.ndarray of int, shape (n_records,)
    train_loss : numpy.ndarray, shape (n_networks, n_records)
        Cross-entropy on the whole training set (NaN once a network diverged).
    train_accuracy, test_accuracy : numpy.ndarray, shape (n_networks, n_records)
    """

    steps: np.ndarray
    train_loss: np.ndarray
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray


def _evaluate(net, x, y):
    with torch.no_grad():
        logits = net(x)
        loss = F.cross_entropy(
            logits.flatten(0, 1), y.repeat(logits.shape[0]), reduction="none"
        ).view(logits.shape[0], -1)
        accuracy = (logits.argmax(-1) == y).double().mean(-1)
    return loss.mean(-1).double(), accuracy


def train_stack(
    net: BatchedMLP,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    *,
    optimizer: str = "sgd",
    lr: float = 0.1,
    n_steps: int = 100,
    batch_size: int | None = None,
    record_every: int = 10,
    seed: int = 0,
) -> StackRuns:
    """Train every member of ``net`` (a classifier) on the cross-entropy, all at once.

    The networks' losses are summed, so each network's gradient is its own and
    each follows the path it would follow alone. Minibatches (the same for every
    network) are drawn without replacement, a new permutation each epoch;
    ``batch_size=None`` is full-batch gradient descent. ``optimizer`` is
    ``'sgd'`` or ``'adam'``. A network whose loss becomes NaN keeps training as
    NaN and counts as untrained (accuracy at chance or worse).

    Returns
    -------
    StackRuns
        Recorded at step 0, every ``record_every`` steps and after the last step.
    """
    if not isinstance(net, BatchedMLP):
        raise ValueError(f"net must be a BatchedMLP, got {type(net).__name__}")
    optimizers = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
    check_choice("optimizer", optimizer, optimizers)
    lr = check_float("lr", lr, positive=True)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    record_every = check_int("record_every", record_every, minimum=1)
    n = len(x_train)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1, maximum=n)
    generator = torch_generator(seed)
    opt = optimizers[optimizer](net.parameters(), lr=lr)
    nan = torch.full((net.n_models,), math.nan, dtype=torch.float64)
    records = []  # (step, train loss, train accuracy, test accuracy)

    def record(step):
        train = _evaluate(net, x_train, y_train)
        test = nan if x_test is None else _evaluate(net, x_test, y_test)[1]
        records.append((step, *train, test))

    record(0)
    perm, position = torch.randperm(n, generator=generator), 0
    for step in range(1, n_steps + 1):
        if batch_size is None:
            xb, yb = x_train, y_train
        else:
            if position + batch_size > n:
                perm, position = torch.randperm(n, generator=generator), 0
            index = perm[position : position + batch_size]
            position += batch_size
            xb, yb = x_train[index], y_train[index]
        logits = net(xb)
        loss = F.cross_entropy(
            logits.flatten(0, 1), yb.repeat(logits.shape[0]), reduction="sum"
        ) / len(yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % record_every == 0 or step == n_steps:
            record(step)
    steps, train_loss, train_accuracy, test_accuracy = zip(*records, strict=True)
    return StackRuns(
        steps=np.array(steps),
        train_loss=torch.stack(train_loss, 1).numpy(),
        train_accuracy=torch.stack(train_accuracy, 1).numpy(),
        test_accuracy=torch.stack(test_accuracy, 1).numpy(),
    )


def trainable_depth(depths, accuracy, threshold: float = 0.5) -> np.ndarray:
    """Deepest network that still trains, for each row of a depth sweep.

    Parameters
    ----------
    depths : sequence of int, increasing
        The depths of the sweep's columns.
    accuracy : array, shape (n_rows, n_depths)
        Accuracy reached by the network of each row and depth (NaN counts as
        untrained).
    threshold : float, default 0.5
        A network *trains* when its accuracy is at least ``threshold``.

    Returns
    -------
    numpy.ndarray, shape (n_rows,)
        The largest depth ``d`` such that every network of the row with depth up
        to ``d`` trains; 0 when even the shallowest does not.
    """
    depths = np.asarray(depths)
    accuracy = np.asarray(accuracy, dtype=float)
    if depths.ndim != 1 or np.any(np.diff(depths) <= 0):
        raise ValueError(f"depths must be 1-D and increasing, got {depths!r}")
    if accuracy.ndim != 2 or accuracy.shape[1] != depths.size:
        raise ValueError(
            f"accuracy must have shape (n_rows, {depths.size}), got {accuracy.shape}"
        )
    threshold = check_float("threshold", threshold, minimum=0.0, maximum=1.0)
    trains = np.nan_to_num(accuracy, nan=-1.0) >= threshold
    # the run of trainable depths from the shallowest one
    n_ok = np.cumprod(trains, axis=1).sum(axis=1)
    return np.where(n_ok > 0, depths[np.maximum(n_ok - 1, 0)], 0)


def jacobian_spread_theory(
    depth, activation: str = "linear", weights: str = "gaussian", *, q: float = 0.0
):
    """Free-probability prediction of :meth:`JacobianSpectra.spread` at criticality.

    When every layer has ``chi_1 = 1`` and its pre-activations have second
    moment ``q``, the relative variance of the spectrum of ``J J^T`` adds up layer
    by layer (Pennington, Schoenholz & Ganguli 2017): each layer contributes
    ``mu_2 / mu_1**2 - 1`` from its slopes, ``mu_k = E[phi'(sqrt(q) z)**(2k)]``,
    plus 1 for a Gaussian weight matrix and 0 for an orthogonal one. The result is
    ``depth`` times that sum (wide-network limit).
    """
    check_choice("activation", activation, ACTIVATIONS)
    check_choice("weights", weights, ("gaussian", "orthogonal"))
    q = check_float("q", q, nonnegative=True)
    depth = np.asarray(depth, dtype=float)
    z, w = np.polynomial.hermite_e.hermegauss(121)
    w = w / w.sum()
    slope2 = phi_prime(activation, torch.as_tensor(np.sqrt(q) * z)).numpy() ** 2
    mu1, mu2 = (w * slope2).sum(), (w * slope2**2).sum()
    per_layer = mu2 / mu1**2 - 1.0 + (1.0 if weights == "gaussian" else 0.0)
    return depth * per_layer
