"""Building the book's networks.

The book counts layers the way the input–output picture suggests: the input is
a layer, so a network of *depth* ``D`` has ``D - 1`` hidden layers and one output
layer. Depth 2 is one hidden layer. Weights are Gaussian with standard deviation
``sigma / sqrt(fan_in)``, so ``sigma`` is the gain that every chapter varies,
independent of the width.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn

from ._checks import check_choice, check_float, check_int, torch_generator


def _tanh(x):
    return torch.tanh(x) if isinstance(x, torch.Tensor) else np.tanh(x)


def _tanh_slope(x):
    return 1.0 - _tanh(x) ** 2


def _relu(x):
    return x.clamp(min=0.0) if isinstance(x, torch.Tensor) else np.maximum(x, 0.0)


def _relu_slope(x):
    if isinstance(x, torch.Tensor):
        return (x > 0).to(x.dtype)
    return (np.asarray(x) > 0).astype(float)


def _identity_slope(x):
    return torch.ones_like(x) if isinstance(x, torch.Tensor) else np.ones_like(x, float)


#: The book's activations: name -> (module class, phi, phi'). ``phi`` and ``phi'``
#: act elementwise on NumPy arrays and on PyTorch tensors alike.
ACTIVATION_TABLE = {
    "tanh": (nn.Tanh, _tanh, _tanh_slope),
    "relu": (nn.ReLU, _relu, _relu_slope),
    "linear": (nn.Identity, lambda x: x, _identity_slope),
}
ACTIVATIONS = tuple(ACTIVATION_TABLE)


def phi(name: str, x):
    """The activation ``name`` applied to ``x`` (array or tensor)."""
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATION_TABLE[name][1](x)


def phi_prime(name: str, x):
    """The slope ``phi'(x)`` of the activation ``name`` (array or tensor)."""
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATION_TABLE[name][2](x)


def activation(name: str) -> nn.Module:
    """A fresh activation module: ``'tanh'``, ``'relu'`` or ``'linear'``."""
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATION_TABLE[name][0]()


def layer_sizes(n_in: int, width: int, depth: int, n_out: int = 1) -> list[int]:
    """Sizes of all layers, input first: ``[n_in, width, ..., width, n_out]``.

    A network of depth ``depth`` has ``depth - 1`` hidden layers of size ``width``.
    """
    n_in = check_int("n_in", n_in, minimum=1)
    width = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=2)
    n_out = check_int("n_out", n_out, minimum=1)
    return [n_in] + [width] * (depth - 1) + [n_out]


def n_params(
    n_in: int, width: int, depth: int, n_out: int = 1, bias: bool = False
) -> int:
    """Number of trainable parameters of :func:`mlp` with the same arguments.

    Without bias this is ``n_in*width + (depth - 2)*width**2 + width*n_out``;
    a bias adds one parameter per non-input unit, ``(depth - 1)*width + n_out``.
    """
    sizes = layer_sizes(n_in, width, depth, n_out)
    weights = n_in * width + (depth - 2) * width**2 + width * n_out
    biases = (depth - 1) * width + n_out if bias else 0
    assert weights == sum(a * b for a, b in itertools.pairwise(sizes))
    return weights + biases


def init_gaussian_(
    module: nn.Module, sigma: float = 1.0, sigma_b: float = 0.0, seed=None
) -> nn.Module:
    """Redraw every ``nn.Linear`` in ``module`` in place.

    Weights get standard deviation ``sigma / sqrt(fan_in)``, biases (if any)
    standard deviation ``sigma_b``. ``seed`` is an int, a ``torch.Generator``
    (whose stream continues) or None for PyTorch's global generator. Returns
    ``module``.
    """
    sigma = check_float("sigma", sigma, positive=True)
    sigma_b = check_float("sigma_b", sigma_b, nonnegative=True)
    generator = torch_generator(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                std = sigma / math.sqrt(layer.in_features)
                layer.weight.copy_(
                    torch.randn(layer.weight.shape, generator=generator) * std
                )
                if layer.bias is not None:
                    layer.bias.copy_(
                        torch.randn(layer.bias.shape, generator=generator) * sigma_b
                    )
    return module


def mlp(
    n_in: int | None = None,
    width: int | None = None,
    depth: int | None = None,
    activation: str = "tanh",
    *,
    sizes=None,
    output_activation: str | None = None,
    n_out: int = 1,
    sigma: float | None = 1.0,
    bias: bool = False,
    sigma_b: float = 0.0,
    seed=None,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A fully connected network in the book's conventions.

    Give either ``n_in, width, depth`` (and ``n_out``) or ``sizes``.

    Parameters
    ----------
    n_in : int
        Input dimension, at least 1.
    width : int
        Size of every hidden layer, at least 1.
    depth : int
        Number of layers counting the input, at least 2: ``depth - 1`` hidden
        layers followed by a linear output layer.
    activation : {'tanh', 'relu', 'linear'}
        Non-linearity after every hidden layer.
    sizes : sequence of int, optional
        All layer sizes, input first, instead of ``n_in, width, depth, n_out``:
        for layers of different widths.
    output_activation : {'tanh', 'relu', 'linear'}, optional
        Non-linearity after the output layer too (none by default).
    n_out : int, default 1
        Output dimension.
    sigma : float or None, default 1
        Weight gain: weights are drawn from N(0, sigma**2 / fan_in). None keeps
        PyTorch's default initialisation, for a caller that applies its own rule.
    bias : bool, default False
        Whether layers have a bias (the book's networks have none by default).
    sigma_b : float, default 0
        Standard deviation of the biases when ``bias`` is true.
    seed : int, torch.Generator or None
        Source of randomness: an int seeds a fresh generator, a generator is
        used as it is, None uses PyTorch's global generator.
    dtype : torch.dtype, default torch.float32

    Returns
    -------
    torch.nn.Sequential
        Alternating ``nn.Linear`` and activation modules; input shape
        ``(n_samples, n_in)``, output shape ``(n_samples, n_out)``.
    """
    check_choice("activation", activation, ACTIVATIONS)
    if output_activation is not None:
        check_choice("output_activation", output_activation, ACTIVATIONS)
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False, got {bias!r}")
    if sizes is None:
        sizes = layer_sizes(n_in, width, depth, n_out)
    elif n_in is not None or width is not None or depth is not None:
        raise ValueError("give either sizes or n_in, width and depth, not both")
    else:
        sizes = [check_int("sizes[i]", n, minimum=1) for n in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes must list at least two sizes, got {sizes!r}")
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(fan_in, fan_out, bias=bias, dtype=dtype))
        last = i == len(sizes) - 2
        if not last or output_activation is not None:
            name = output_activation if last else activation
            layers.append(ACTIVATION_TABLE[name][0]())
    net = nn.Sequential(*layers)
    if sigma is None:
        return net
    return init_gaussian_(net, sigma=sigma, sigma_b=sigma_b, seed=seed)


def linear_layers(net: nn.Module) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of ``net`` in order."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(
            f"net must contain at least one nn.Linear layer, got {type(net).__name__}"
        )
    return layers


def count_params(net: nn.Module) -> int:
    """Number of trainable scalars in ``net`` (``sum(p.numel())``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


class BatchedMLP(nn.Module):
    """``n_models`` independent MLPs evaluated as one batched computation.

    Member ``k`` is the network ``mlp(n_in, widths[k], depth, activation, ...)``;
    members narrower than the widest are padded with hidden units whose weights
    are zero and stay zero (their gradients are masked), so each member computes
    exactly what its own narrow network would. Training many small networks this
    way costs about as much as training the largest one alone, because per-step
    overhead, not arithmetic, dominates networks this small.

    Parameters
    ----------
    n_in, depth, activation, n_out, sigma, bias, sigma_b, seed, dtype
        As in :func:`mlp`.
    widths : sequence of int
        Hidden width of each member; ``len(widths)`` is the number of members.

    Notes
    -----
    ``forward(x)`` takes ``x`` of shape ``(n_samples, n_in)`` (the same inputs for
    every member) or ``(n_models, n_samples, n_in)`` and returns shape
    ``(n_models, n_samples, n_out)``.
    """

    def __init__(
        self,
        n_in: int,
        widths,
        depth: int,
        activation: str = "tanh",
        *,
        n_out: int = 1,
        sigma: float = 1.0,
        bias: bool = False,
        sigma_b: float = 0.0,
        seed=None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        generator = torch_generator(seed)
        widths = [check_int("widths[i]", w, minimum=1) for w in widths]
        if not widths:
            raise ValueError("widths must name at least one member, got []")
        check_choice("activation", activation, ACTIVATIONS)
        sigma = check_float("sigma", sigma, positive=True)
        sigma_b = check_float("sigma_b", sigma_b, nonnegative=True)
        self.widths = widths
        self.activation = activation
        self._act = ACTIVATION_TABLE[activation][0]()
        w_max = max(widths)
        sizes = layer_sizes(n_in, w_max, depth, n_out)
        k = len(widths)
        width_t = torch.tensor(widths)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList() if bias else None
        masks = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            rows = torch.ones(k, fan_out, dtype=dtype)
            cols = torch.ones(k, fan_in, dtype=dtype)
            if i < len(sizes) - 2:  # output units of a hidden layer
                rows = (torch.arange(fan_out) < width_t[:, None]).to(dtype)
            if i > 0:  # input units that are hidden
                cols = (torch.arange(fan_in) < width_t[:, None]).to(dtype)
            mask = rows[:, :, None] * cols[:, None, :]
            # each member's own fan-in sets its scale, as in a narrow network
            true_fan_in = (
                torch.full((k,), float(fan_in)) if i == 0 else width_t.to(dtype)
            )
            std = (sigma / true_fan_in.sqrt())[:, None, None]
            w = (
                torch.randn(k, fan_out, fan_in, generator=generator, dtype=dtype)
                * std
                * mask
            )
            self.weights.append(nn.Parameter(w))
            masks.append(mask)
            if bias:
                b = (
                    torch.randn(k, fan_out, generator=generator, dtype=dtype)
                    * sigma_b
                    * rows
                )
                self.biases.append(nn.Parameter(b))
        for i, mask in enumerate(masks):
            self.register_buffer(f"mask{i}", mask)
            self.weights[i].register_hook(lambda g, m=mask: g * m)
        if bias:
            for i, b in enumerate(self.biases):
                row_mask = (
                    masks[i][:, :, 0].clone()
                    if i < len(masks) - 1
                    else torch.ones_like(b)
                )
                b.register_hook(lambda g, m=row_mask: g * m)

    @property
    def n_models(self) -> int:
        return len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        h = x
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            h = torch.bmm(h, w.transpose(1, 2))
            if self.biases is not None:
                h = h + self.biases[i][:, None, :]
            if i < last:
                h = self._act(h)
        return h

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as a plain :func:`mlp` with copied (unpadded) weights."""
        k = check_int("k", k, minimum=0, maximum=self.n_models - 1)
        width = self.widths[k]
        depth = len(self.weights)
        n_in = self.weights[0].shape[2]
        n_out = self.weights[-1].shape[1]
        dtype = self.weights[0].dtype
        net = mlp(
            n_in,
            width,
            depth,
            self.activation,
            n_out=n_out,
            bias=self.biases is not None,
            dtype=dtype,
        )
        with torch.no_grad():
            for i, layer in enumerate(linear_layers(net)):
                rows = width if i < depth - 1 else n_out
                cols = n_in if i == 0 else width
                layer.weight.copy_(self.weights[i][k, :rows, :cols])
                if layer.bias is not None:
                    layer.bias.copy_(self.biases[i][k, :rows])
        return net

    def width_groups(self):
        """Members grouped by width, narrowest first.

        Yields ``(idx, weights)``: the members' indices (a tensor) and copies of
        their weight matrices without padding, shapes ``(len(idx), out, in)``.
        """
        depth, n_in = len(self.weights), self.weights[0].shape[2]
        n_out = self.weights[-1].shape[1]
        for width in sorted(set(self.widths)):
            idx = torch.tensor([k for k, w in enumerate(self.widths) if w == width])
            sizes = itertools.pairwise(layer_sizes(n_in, width, depth, n_out))
            yield (
                idx,
                [
                    w.detach()[idx, :rows, :cols].clone()
                    for w, (cols, rows) in zip(self.weights, sizes, strict=True)
                ],
            )

    def set_members(self, idx, weights) -> None:
        """Write unpadded ``weights`` (as from :meth:`width_groups`) to members ``idx``."""
        with torch.no_grad():
            for w, new in zip(self.weights, weights, strict=True):
                w[idx, : new.shape[1], : new.shape[2]] = new

    def n_params(self) -> list[int]:
        """Trainable parameters of each member (padding excluded)."""
        depth = len(self.weights)
        n_in = self.weights[0].shape[2]
        n_out = self.weights[-1].shape[1]
        return [
            n_params(n_in, w, depth, n_out, bias=self.biases is not None)
            for w in self.widths
        ]
