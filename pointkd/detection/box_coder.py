r"""Box regression targets relative to anchors (SECOND's residual coder).

A ground-truth box :math:`g` is encoded against an anchor :math:`a`, both
``(x, y, z, dx, dy, dz, heading)``, as

.. math::
    d = \sqrt{dx_a^2 + dy_a^2},\quad
    t_x = \frac{x_g - x_a}{d},\ t_y = \frac{y_g - y_a}{d},\ t_z = \frac{z_g - z_a}{dz_a},\\
    t_{dx} = \log\frac{dx_g}{dx_a},\ t_{dy} = \log\frac{dy_g}{dy_a},\ t_{dz} = \log\frac{dz_g}{dz_a},\
    t_\theta = \theta_g - \theta_a,

as in `SECOND <https://www.mdpi.com/1424-8220/18/10/3337>`_ and
`PointPillars <https://arxiv.org/abs/1812.05784>`_. Decoding inverts it.
The heading residual is trained through :func:`sin_difference`, which leaves the
direction (heading versus heading + :math:`\pi`) to a separate classifier
(:func:`direction_targets`, :func:`apply_direction`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

BOX_CODE_SIZE = 7


def limit_period(angle: Tensor, offset: float = 0.5, period: float = 2 * math.pi) -> Tensor:
    r"""``angle`` wrapped into :math:`[-\text{offset} \cdot \text{period}, (1 - \text{offset}) \cdot \text{period})`."""
    return angle - torch.floor(angle / period + offset) * period


def encode_boxes(boxes: Tensor, anchors: Tensor) -> Tensor:
    """Regression targets ``(..., 7)`` of ``boxes`` against ``anchors`` (same shape)."""
    xa, ya, za, dxa, dya, dza, ra = torch.unbind(anchors, dim=-1)
    xg, yg, zg, dxg, dyg, dzg, rg = torch.unbind(boxes, dim=-1)
    diagonal = torch.sqrt(dxa**2 + dya**2)
    # Guard the logarithms against a degenerate (zero-size) label.
    tiny = 1e-5
    return torch.stack(
        [
            (xg - xa) / diagonal,
            (yg - ya) / diagonal,
            (zg - za) / dza,
            torch.log(dxg.clamp(min=tiny) / dxa),
            torch.log(dyg.clamp(min=tiny) / dya),
            torch.log(dzg.clamp(min=tiny) / dza),
            rg - ra,
        ],
        dim=-1,
    )


def decode_boxes(deltas: Tensor, anchors: Tensor) -> Tensor:
    """Boxes ``(..., 7)`` from regression outputs ``deltas`` against ``anchors``."""
    xa, ya, za, dxa, dya, dza, ra = torch.unbind(anchors, dim=-1)
    xt, yt, zt, dxt, dyt, dzt, rt = torch.unbind(deltas, dim=-1)
    diagonal = torch.sqrt(dxa**2 + dya**2)
    # exp of a wild early-training output must not overflow to inf.
    return torch.stack(
        [
            xt * diagonal + xa,
            yt * diagonal + ya,
            zt * dza + za,
            torch.exp(dxt.clamp(max=10.0)) * dxa,
            torch.exp(dyt.clamp(max=10.0)) * dya,
            torch.exp(dzt.clamp(max=10.0)) * dza,
            rt + ra,
        ],
        dim=-1,
    )


def sin_difference(predicted: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    r"""Replace the heading code of both by :math:`\sin(a)\cos(b)` and :math:`\cos(a)\sin(b)`.

    The regression loss between them then measures :math:`\sin(\theta_p - \theta_g)`,
    which is zero for a box facing backwards; the direction classifier resolves that.
    """
    heading_predicted = torch.sin(predicted[..., 6:7]) * torch.cos(target[..., 6:7])
    heading_target = torch.cos(predicted[..., 6:7]) * torch.sin(target[..., 6:7])
    return (
        torch.cat([predicted[..., :6], heading_predicted], dim=-1),
        torch.cat([target[..., :6], heading_target], dim=-1),
    )


def direction_targets(headings: Tensor, offset: float = math.pi / 4, num_bins: int = 2) -> Tensor:
    """Direction bin of each heading: which of ``num_bins`` equal sectors ``heading - offset`` falls in."""
    angle = limit_period(headings - offset, 0.0, 2 * math.pi)
    return torch.floor(angle / (2 * math.pi / num_bins)).long().clamp(0, num_bins - 1)


def apply_direction(headings: Tensor, direction: Tensor, offset: float = math.pi / 4, num_bins: int = 2) -> Tensor:
    """Headings moved to the sector that the direction classifier chose (OpenPCDet's decoding)."""
    period = 2 * math.pi / num_bins
    base = limit_period(headings - offset, 0.0, period)
    return base + offset + period * direction.to(headings.dtype)
