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

from ._checks import check_choice, check_float, check_int, torch_generator
from .nets import ACTIVATIONS, mlp, phi, phi_prime
from .training import History, fit

#: Rule name -> the factor that multiplies the gain to give the standard deviation.
RULES = ("fan_in", "fan_out", "glorot", "sum_fan", "max_fan", "uniform_heuristic")


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
    fan = {
        "fan_in": fan_in,
        "fan_out": fan_out,
        "glorot": (fan_in + fan_out) / 2,
        "sum_fan": fan_in + fan_out,
        "max_fan": max(fan_in, fan_out),
        "uniform_heuristic": 3 * fan_in,
    }[rule]
    return gain / math.sqrt(fan)


def initialize_(
    net: nn.Module,
    rule: str,
    activation: str = "linear",
    *,
    gain: float | None = None,
    variance_scale: float = 1.0,
    seed=None,
) -> nn.Module:
    """Redraw every ``nn.Linear`` of ``net`` in place from N(0, std**2), biases to zero.

    ``std`` is :func:`init_std` of the layer's ``in_features`` and ``out_features``,
    times ``sqrt(variance_scale)``: ``variance_scale=2`` doubles the variance the
    rule asks for. Weights are drawn in the order the layers appear, with the same
    draws as ``torch.nn.init``'s normal initialisers given the same generator.
    ``seed``: an int, a ``torch.Generator`` (its stream continues) or None for
    PyTorch's global generator. Returns ``net``.
    """
    check_choice("rule", rule, RULES)
    check_choice("activation", activation, ACTIVATIONS)
    variance_scale = check_float("variance_scale", variance_scale, positive=True)
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(
            f"net must contain an nn.Linear layer, got {type(net).__name__}"
        )
    generator = torch_generator(seed)
    with torch.no_grad():
        for layer in layers:
            std = init_std(
                rule, layer.in_features, layer.out_features, activation, gain=gain
            )
            layer.weight.normal_(
                0.0, std * math.sqrt(variance_scale), generator=generator
            )
            if layer.bias is not None:
                layer.bias.zero_()
    return net


def layer_stack(
    widths,
    activation: str,
    rule: str = "fan_in",
    *,
    gain: float | None = None,
    variance_scale: float = 1.0,
    seed=None,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A stack of bias-free layers, *each* followed by ``activation``.

    :func:`whydeep.nets.mlp` with ``output_activation=activation``: the last layer
    has an activation too, so every layer is alike and the signal can be followed
    through all of them; the weights follow ``rule``.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, n_1, ..., n_L]``: input size, then the output size of each of the
        ``L = len(widths) - 1`` layers.
    activation, rule, gain, variance_scale, seed
        As in :func:`initialize_`.
    dtype : torch.dtype, default torch.float32

    Returns
    -------
    torch.nn.Sequential
        ``L`` pairs (``nn.Linear``, activation); input ``(n_samples, n_0)``, output
        ``(n_samples, n_L)``.
    """
    net = mlp(
        sizes=widths,
        activation=activation,
        output_activation=activation,
        sigma=None,
        dtype=dtype,
    )
    return initialize_(
        net, rule, activation, gain=gain, variance_scale=variance_scale, seed=seed
    )


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

    Each member is a :func:`layer_stack` with weights drawn under ``rule`` (every
    layer followed by ``activation``); inputs and the gradient arriving at the
    output are i.i.d. standard normal. The backward pass is back-propagation
    written out, ``dloss/dh^(l-1) = W^T (phi'(a^l) * dloss/dh^l)``, with the same
    weights as the forward pass.

    Parameters
    ----------
    widths : sequence of int
        ``[n_0, ..., n_L]`` as in :func:`layer_stack`.
    activation, rule, variance_scale, gain
        As in :func:`initialize_`.
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
    stds = [
        init_std(rule, fan_in, fan_out, activation, gain=gain)
        * math.sqrt(variance_scale)
        for fan_in, fan_out in itertools.pairwise(widths)
    ]
    generator = torch_generator(seed)
    h = torch.randn(n_networks, n_samples, widths[0], generator=generator)
    forward, slopes, kept_a, weights = [h.pow(2).mean(dim=(1, 2))], [], {}, []
    for layer in range(1, depth + 1):
        w = _layer_weights(
            seed, layer, n_networks, widths[layer - 1], widths[layer], stds[layer - 1]
        )
        if backward:
            weights.append(w)
        a = torch.bmm(h, w.transpose(1, 2))
        h, slope = phi(activation, a), phi_prime(activation, a)
        slopes.append(slope)
        forward.append(h.pow(2).mean(dim=(1, 2)))
        if layer in keep:
            kept_a[layer] = a
    gradients = [torch.full((n_networks,), float("nan"))] * (depth + 1)
    kept_g = {}
    if backward:
        g = torch.randn(n_networks, n_samples, widths[-1], generator=generator)
        gradients = [g.pow(2).mean(dim=(1, 2))]
        for layer in range(depth, 0, -1):
            if layer in keep:
                kept_g[layer] = g
            delta = slopes[layer - 1] * g
            g = torch.bmm(delta, weights[layer - 1])
            gradients.append(g.pow(2).mean(dim=(1, 2)))
        gradients = gradients[::-1]
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


def train_classifier(
    net: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    lr: float = 0.1,
    max_steps: int = 500,
    record_every: int = 10,
) -> History:
    """Full-batch gradient descent on the cross-entropy, recording the test set too.

    Returns
    -------
    whydeep.training.History
        ``loss`` is the training cross-entropy; ``extra['test_loss']`` and
        ``extra['test_accuracy']`` are recorded at the same steps.
    """

    def record(model):
        with torch.no_grad():
            logits = model(x_test)
        return {
            "test_loss": float(F.cross_entropy(logits, y_test)),
            "test_accuracy": float((logits.argmax(dim=1) == y_test).double().mean()),
        }

    return fit(
        net,
        x_train,
        y_train,
        optimizer="sgd",
        lr=lr,
        max_steps=max_steps,
        loss_fn=F.cross_entropy,
        record_every=record_every,
        record=record,
    )


def plot_profiles(ax, profiles: dict, *, theory: dict | None = None, ylabel: str = ""):
    """Per-layer second moments on a log scale, one line per entry of ``profiles``.

    ``theory`` maps the same labels to predicted curves, drawn dashed in the same colour.
    """
    for k, (label, values) in enumerate(profiles.items()):
        (line,) = ax.semilogy(
            np.arange(len(values)), values, label=label, color=f"C{k}"
        )
        if theory is not None and label in theory:
            ax.semilogy(
                np.arange(len(theory[label])),
                theory[label],
                "--",
                color=line.get_color(),
                linewidth=1.2,
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
