"""Input encodings of radiance fields."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pointkd.ops.hash_grid import HashGridConfig, hash_grid_encode


class HashGridEncoding(nn.Module):
    r"""Multiresolution hash encoding of `Instant-NGP <https://arxiv.org/abs/2201.05989>`_
    with its trainable tables: :func:`pointkd.ops.hash_grid_encode` on the
    module's ``embeddings``.

    .. math::
        \mathbf{x} \in [0, 1]^3 \;\mapsto\;
        \big[\, \mathrm{trilerp}_l(\mathbf{x}; \Theta) \,\big]_{l=0}^{L-1} \in \mathbb{R}^{L F}

    The tables are initialised uniformly in :math:`[-10^{-4}, 10^{-4}]`, as in
    the paper, so that the encoding starts near zero and the decoder's early
    gradients are not swamped by hash collisions.

    Args:
        config (HashGridConfig, optional): the levels; the default is
            Instant-NGP's NeRF configuration (16 levels of 2 features,
            :math:`T = 2^{19}`, resolutions 16 to 2048, 12.2 M parameters).
            (default: ``HashGridConfig()``)
        init_scale (float, optional): half-width of the uniform
            initialisation. (default: ``1e-4``)
        dtype (torch.dtype, optional): of the tables; points must have it too.
            (default: ``None``, torch's default dtype)
        device (torch.device, optional): of the tables. (default: ``None``)

    Shapes:
        - input: :math:`(*, 3)` in :math:`[0, 1]^3` (others are clamped)
        - output: :math:`(*, L F)`
    """

    def __init__(
        self,
        config: HashGridConfig | None = None,
        init_scale: float = 1e-4,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        self.config = config if config is not None else HashGridConfig()
        self.init_scale = init_scale
        self.embeddings = nn.Parameter(
            torch.empty(self.config.num_embeddings, self.config.features_per_level, dtype=dtype, device=device)
        )
        self.reset_parameters()

    @property
    def output_dim(self) -> int:
        return self.config.output_dim

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.embeddings, -self.init_scale, self.init_scale)

    def forward(self, points: Tensor) -> Tensor:
        return hash_grid_encode(points, self.embeddings, self.config)

    def extra_repr(self) -> str:
        config = self.config
        return (
            f"levels={config.num_levels}, features_per_level={config.features_per_level}, "
            f"log2_table_size={config.log2_table_size}, resolutions={config.base_resolution}..{config.resolutions[-1]}"
        )
