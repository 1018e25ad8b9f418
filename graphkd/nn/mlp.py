"""The student: an MLP over node features, with the hidden layer exposed for distillation losses."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

NORMS = ("none", "batch", "layer")


class MLP(torch.nn.Module):
    r"""Multi-layer perceptron :math:`f(x) = W_L\,\sigma(\ldots \sigma(W_1 x))`.

    Each hidden layer is linear, then the norm (optional), ReLU and dropout.

    Args:
        in_channels (int): feature size :math:`F`.
        hidden_channels (int): width of the hidden layers.
        out_channels (int): number of classes :math:`C`.
        num_layers (int): linear layers, ``>= 1`` (1 is logistic regression). (default: ``2``)
        dropout (float): dropout after each hidden layer. (default: ``0.0``)
        norm (str): ``"none"``, ``"batch"`` or ``"layer"``. (default: ``"none"``)

    Shapes:
        - **input:** :math:`(N, F)`
        - **output:** :math:`(N, C)`; :meth:`forward_with_hidden` also returns the last hidden
          layer :math:`(N, H)` (the input itself when ``num_layers == 1``).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2,
                 dropout: float = 0.0, norm: str = "none"):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("hidden_channels", hidden_channels),
                            ("out_channels", out_channels), ("num_layers", num_layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.in_channels, self.hidden_channels, self.out_channels = in_channels, hidden_channels, out_channels
        self.num_layers, self.dropout, self.norm = num_layers, dropout, norm
        widths = [in_channels] + [hidden_channels] * (num_layers - 1)
        self.hidden_layers = torch.nn.ModuleList()
        for width_in, width_out in itertools.pairwise(widths):
            block = [torch.nn.Linear(width_in, width_out)]
            if norm == "batch":
                block.append(torch.nn.BatchNorm1d(width_out))
            elif norm == "layer":
                block.append(torch.nn.LayerNorm(width_out))
            block += [torch.nn.ReLU(), torch.nn.Dropout(dropout)]
            self.hidden_layers.append(torch.nn.Sequential(*block))
        self.output = torch.nn.Linear(widths[-1], out_channels)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward_with_hidden(self, x: Tensor) -> tuple[Tensor, Tensor]:
        hidden = x
        for layer in self.hidden_layers:
            hidden = layer(hidden)
        return self.output(hidden), hidden

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_hidden(x)[0]

    def config(self) -> dict:
        """Constructor arguments, to rebuild the model from a checkpoint."""
        return {"in_channels": self.in_channels, "hidden_channels": self.hidden_channels,
                "out_channels": self.out_channels, "num_layers": self.num_layers, "dropout": self.dropout,
                "norm": self.norm}
