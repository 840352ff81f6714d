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


def _elementwise(on_tensor, on_array):
    """One elementwise function of a PyTorch tensor or a NumPy array."""
    return lambda x: on_tensor(x) if isinstance(x, torch.Tensor) else on_array(x)


_tanh = _elementwise(torch.tanh, np.tanh)

#: The book's activations: name -> (module class, phi, phi'). ``phi`` and ``phi'``
#: act elementwise on NumPy arrays and on PyTorch tensors alike.
ACTIVATION_TABLE = {
    "tanh": (nn.Tanh, _tanh, lambda x: 1.0 - _tanh(x) ** 2),
    "relu": (
        nn.ReLU,
        _elementwise(lambda x: x.clamp(min=0.0), lambda x: np.maximum(x, 0.0)),
        _elementwise(
            lambda x: (x > 0).to(x.dtype), lambda x: (np.asarray(x) > 0).astype(float)
        ),
    ),
    "linear": (
        nn.Identity,
        lambda x: x,
        _elementwise(torch.ones_like, lambda x: np.ones_like(x, float)),
    ),
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
    weights = sum(fan_in * fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    return weights + (sum(sizes[1:]) if bias else 0)


#: Weight rules: name -> the fan ``n`` of a layer (fan-in, fan-out) in
#: ``std = gain / sqrt(n)``. ``'glorot'`` averages the two fans, ``'sum_fan'``
#: adds them, and ``'uniform_heuristic'`` is the standard deviation of PyTorch's
#: default, uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.
FANS = {
    "fan_in": lambda fan_in, fan_out: fan_in,
    "fan_out": lambda fan_in, fan_out: fan_out,
    "glorot": lambda fan_in, fan_out: (fan_in + fan_out) / 2,
    "sum_fan": lambda fan_in, fan_out: fan_in + fan_out,
    "max_fan": lambda fan_in, fan_out: max(fan_in, fan_out),
    "uniform_heuristic": lambda fan_in, fan_out: 3 * fan_in,
}


def init_gaussian_(
    module: nn.Module,
    sigma: float = 1.0,
    sigma_b: float = 0.0,
    seed=None,
    *,
    rule: str = "fan_in",
) -> nn.Module:
    """Redraw every ``nn.Linear`` in ``module`` in place, in the order they appear.

    Weights get standard deviation ``sigma / sqrt(n)``, ``n`` the fan of ``rule``
    (:data:`FANS`; by default the fan-in), the same draws as ``torch.nn.init``'s
    normal initialisers given the same generator; biases (if any) get standard
    deviation ``sigma_b``. ``seed`` is an int, a ``torch.Generator`` (whose
    stream continues) or None for PyTorch's global generator. Returns ``module``.
    """
    sigma = check_float("sigma", sigma, positive=True)
    sigma_b = check_float("sigma_b", sigma_b, nonnegative=True)
    check_choice("rule", rule, FANS)
    generator = torch_generator(seed)
    with torch.no_grad():
        for layer in linear_layers(module):
            fan = FANS[rule](layer.in_features, layer.out_features)
            std = sigma / math.sqrt(fan)
            for p, scale in ((layer.weight, std), (layer.bias, sigma_b)):
                if p is not None:
                    z = torch.randn(p.shape, generator=generator, dtype=p.dtype)
                    p.copy_(z * scale)
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
        The weights are drawn in float32 and converted, so that a float64
        network starts from the weights of its float32 twin.

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
    # drawn in float32, then converted: every dtype starts from the same weights
    draw = dtype if sigma is None else torch.float32
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(fan_in, fan_out, bias=bias, dtype=draw))
        last = i == len(sizes) - 2
        if not last or output_activation is not None:
            name = output_activation if last else activation
            layers.append(ACTIVATION_TABLE[name][0]())
    net = nn.Sequential(*layers)
    if sigma is None:
        return net
    return init_gaussian_(net, sigma=sigma, sigma_b=sigma_b, seed=seed).to(dtype)


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


def _padded_parameter(value: torch.Tensor, mask: torch.Tensor) -> nn.Parameter:
    """``value`` as a parameter that is zero, and stays zero in training, where
    ``mask`` is zero (the padding of narrower members)."""
    param = nn.Parameter(value * mask)
    if not bool(mask.all()):
        param.register_hook(lambda grad: grad * mask)
    return param


class BatchedMLP(nn.Module):
    """``n_models`` independent MLPs evaluated as one batched computation.

    Member ``k`` is the network ``mlp(n_in, widths[k], depths[k], activation,
    ...)``. Members narrower than the widest are padded with hidden units whose
    weights are zero and stay zero (their gradients are masked); members
    shallower than the deepest skip the hidden layers they lack (internally the
    members are sorted by depth, deepest first, so that layer ``l`` is one
    ``bmm`` over a leading block of them). Each member computes exactly what its
    own network would. Training many small networks this way costs about as
    much as training the largest one alone, because per-step overhead, not
    arithmetic, dominates networks this small.

    Parameters
    ----------
    n_in, activation, n_out, bias, seed, dtype
        As in :func:`mlp`.
    widths, depth : int or sequence of int
        Hidden width and depth of each member (a single value is shared).
    sigma, sigma_b : float or sequence of float
        Weight gain (> 0) and bias scale (>= 0), shared or one per member.
    torch_default : bool or sequence of bool, default False
        Members that instead draw weights and biases as ``nn.Linear`` does by
        default, uniform on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``.

    Notes
    -----
    ``forward(x)`` takes ``x`` of shape ``(n_samples, n_in)`` (the same inputs for
    every member) or ``(n_models, n_samples, n_in)`` and returns shape
    ``(n_models, n_samples, n_out)``, in the order the members were given.
    """

    def __init__(
        self,
        n_in: int,
        widths,
        depth,
        activation: str = "tanh",
        *,
        n_out: int = 1,
        sigma=1.0,
        bias: bool = False,
        sigma_b=0.0,
        torch_default=False,
        seed=None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        n_in = check_int("n_in", n_in, minimum=1)
        n_out = check_int("n_out", n_out, minimum=1)
        check_choice("activation", activation, ACTIVATIONS)
        members = {}
        for name, value, check in (
            ("widths", widths, lambda v: check_int("widths[i]", v, minimum=1)),
            ("depth", depth, lambda v: check_int("depth[i]", v, minimum=2)),
            ("sigma", sigma, lambda v: check_float("sigma", v, positive=True)),
            ("sigma_b", sigma_b, lambda v: check_float("sigma_b", v, nonnegative=True)),
            ("torch_default", torch_default, bool),
        ):
            values = [check(v) for v in np.atleast_1d(value).tolist()]
            if not values:
                raise ValueError(f"{name} must name at least one member, got []")
            members[name] = values
        k = max(len(v) for v in members.values())
        for name, values in members.items():
            if len(values) not in (1, k):
                raise ValueError(
                    f"{name} must hold one value or one per member ({k}), "
                    f"got {len(values)}"
                )
            members[name] = np.broadcast_to(np.array(values), (k,))
        generator = torch_generator(seed)
        depths = members["depth"]
        order = np.argsort(-depths, kind="stable")
        self.widths, self.depths = members["widths"].tolist(), depths
        self._sorted = bool(np.any(order != np.arange(k)))
        self.register_buffer("order", torch.as_tensor(order))
        self.activation = activation
        self._act = ACTIVATION_TABLE[activation][0]()
        self.register_buffer("inverse", torch.as_tensor(np.argsort(order)))
        width_t = torch.as_tensor(members["widths"][order])
        gains, sb = members["sigma"][order], members["sigma_b"][order]
        uniform = torch.as_tensor(members["torch_default"][order])
        # layer 0: input -> hidden; 1 .. D-2: hidden -> hidden; then the read-out
        sizes = layer_sizes(n_in, int(width_t.max()), int(depths.max()), n_out)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList() if bias else None
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            last = i == len(sizes) - 2
            rows = k if i == 0 or last else int((depths > i + 1).sum())
            true_in = torch.full((rows,), fan_in) if i == 0 else width_t[:rows]
            true_out = torch.full((rows,), fan_out) if last else width_t[:rows]
            rows_mask = (torch.arange(fan_out) < true_out[:, None]).to(dtype)
            mask = rows_mask[:, :, None] * (
                torch.arange(fan_in) < true_in[:, None, None]
            )
            # each member's own fan-in sets its scale, as in a narrow network;
            # the input layer's scale is computed in float32, the others' in float64
            p = torch.float32 if i == 0 else torch.float64
            std = true_in.to(p).sqrt().reciprocal() * torch.as_tensor(
                gains[:rows], dtype=p
            )
            w = torch.randn(rows, fan_out, fan_in, generator=generator, dtype=dtype)
            w = w * std.to(dtype)[:, None, None]
            b = None
            if bias:
                b = torch.randn(rows, fan_out, generator=generator, dtype=dtype)
                b = b * torch.as_tensor(sb[:rows]).to(dtype)[:, None]
            if uniform[:rows].any():
                u = uniform[:rows]
                bound = (1.0 / true_in[u].double().sqrt()).to(dtype)
                n_u = int(u.sum())
                u_w = torch.rand(n_u, fan_out, fan_in, generator=generator, dtype=dtype)
                w[u] = (2 * u_w - 1) * bound[:, None, None]
                if bias:
                    u_b = torch.rand(n_u, fan_out, generator=generator, dtype=dtype)
                    b[u] = (2 * u_b - 1) * bound[:, None]
            self.weights.append(_padded_parameter(w, mask))
            if bias:
                self.biases.append(_padded_parameter(b, rows_mask))

    @property
    def n_models(self) -> int:
        return len(self.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
            raise ValueError(
                f"x must be a tensor (n_samples, n_in) or (n_models, n_samples, "
                f"n_in), got {type(x).__name__} {tuple(getattr(x, 'shape', ()))}"
            )
        if x.dim() == 2:
            h = x.unsqueeze(0).expand(self.n_models, -1, -1)
        else:
            h = x[self.order] if self._sorted else x
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            new = torch.bmm(h[: w.shape[0]], w.transpose(1, 2))
            if self.biases is not None:
                new = new + self.biases[i][:, None, :]
            if i < last:
                new = self._act(new)
            h = new if w.shape[0] == h.shape[0] else torch.cat([new, h[len(w) :]])
        return h[self.inverse] if self._sorted else h

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as a plain :func:`mlp` with copied (unpadded) weights."""
        k = check_int("k", k, minimum=0, maximum=self.n_models - 1)
        width, depth = self.widths[k], int(self.depths[k])
        n_in, n_out = self.weights[0].shape[2], self.weights[-1].shape[1]
        net = mlp(
            n_in,
            width,
            depth,
            self.activation,
            n_out=n_out,
            bias=self.biases is not None,
            dtype=self.weights[0].dtype,
        )
        # the member's row in the depth-sorted batch; its read-out is the last layer
        row, layers = int(self.inverse[k]), linear_layers(net)
        with torch.no_grad():
            for layer, i in zip(layers, [*range(depth - 1), -1], strict=True):
                rows, cols = layer.weight.shape
                layer.weight.copy_(self.weights[i][row, :rows, :cols])
                if layer.bias is not None:
                    layer.bias.copy_(self.biases[i][row, :rows])
        return net

    def width_groups(self):
        """Members grouped by width, narrowest first (all members of one depth).

        Yields ``(idx, params)``: the members' indices (a tensor) and copies of
        their parameters without padding, layer by layer: each weight matrix,
        shape ``(len(idx), out, in)``, followed (with biases) by its bias,
        shape ``(len(idx), out)``.
        """
        if np.any(self.depths != self.depths[0]):
            raise ValueError(f"members must share one depth, got {self.depths}")
        depth, n_in = len(self.weights), self.weights[0].shape[2]
        n_out = self.weights[-1].shape[1]
        for width in sorted(set(self.widths)):
            idx = torch.tensor([k for k, w in enumerate(self.widths) if w == width])
            sizes = itertools.pairwise(layer_sizes(n_in, width, depth, n_out))
            params = []
            for i, (cols, rows) in enumerate(sizes):
                params.append(self.weights[i].detach()[idx, :rows, :cols].clone())
                if self.biases is not None:
                    params.append(self.biases[i].detach()[idx, :rows].clone())
            yield idx, params

    def set_members(self, idx, params) -> None:
        """Write unpadded ``params`` (ordered as :meth:`width_groups` yields them)
        to members ``idx``."""
        layers = [self.weights] if self.biases is None else [self.weights, self.biases]
        with torch.no_grad():
            for i, new in enumerate(params):
                own = layers[i % len(layers)][i // len(layers)]
                own[(idx, *(slice(0, n) for n in new.shape[1:]))] = new

    def n_params(self) -> list[int]:
        """Trainable parameters of each member (padding excluded)."""
        n_in, n_out = self.weights[0].shape[2], self.weights[-1].shape[1]
        return [
            n_params(n_in, w, int(d), n_out, bias=self.biases is not None)
            for w, d in zip(self.widths, self.depths, strict=True)
        ]
