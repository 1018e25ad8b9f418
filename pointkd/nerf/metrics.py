r"""Image quality metrics of novel-view synthesis: PSNR and SSIM.

Shape convention: images are channels-last, :math:`(\ldots, H, W, C)` (``C = 3``
for RGB), as :class:`pointkd.nerf.data.NerfScene` stores them. A metric is
computed per image, over its last three dimensions; ``reduction="mean"``
averages the per-image values over the leading (batch) dimensions, which is how
NeRF papers report a test set (the mean of per-view PSNRs, not the PSNR of the
mean error).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["mse_to_psnr", "psnr", "ssim"]

REDUCTIONS = ("mean", "none")


def _check_images(prediction: Tensor, target: Tensor, reduction: str) -> None:
    for name, value in (("prediction", prediction), ("target", target)):
        if not isinstance(value, Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {value.dtype}")
        if value.dim() < 3:
            raise ValueError(
                f"{name} must be images [..., H, W, C], got {list(value.shape)} "
                "(for flat batches of rays, use mse_to_psnr on their mean squared error)"
            )
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target must have the same shape, got {list(prediction.shape)} and {list(target.shape)}"
        )
    for name, value in (("prediction", prediction), ("target", target)):
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite (it holds NaN or infinite values)")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_max_value(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def mse_to_psnr(mse: Tensor | float, max_value: float = 1.0) -> Tensor:
    r"""Peak signal-to-noise ratio of a mean squared error, in decibels:

    .. math::
        \mathrm{PSNR} = 10 \log_{10} \frac{\text{max\_value}^2}{\mathrm{MSE}}.

    A zero error gives :math:`+\infty`. Differentiable, so a training loop can
    log it from its loss.

    Args:
        mse (Tensor or float): mean squared errors, finite and :math:`\ge 0`.
        max_value (float, optional): the largest possible pixel value.
            (default: ``1.0``)

    Shapes:
        - mse: any; output: the same (a 0-dim tensor for a float)

    Raises:
        ValueError: a negative or non-finite ``mse``, a ``max_value`` that is
            not positive.
    """
    max_value = _check_max_value("max_value", max_value)
    if not isinstance(mse, Tensor) or not mse.is_floating_point():
        mse = torch.as_tensor(mse, dtype=torch.get_default_dtype())
    if not torch.isfinite(mse).all() or (mse < 0).any():
        raise ValueError("mse must be finite and >= 0")
    return 20.0 * math.log10(max_value) - 10.0 * torch.log10(mse)


def psnr(prediction: Tensor, target: Tensor, max_value: float = 1.0, reduction: str = "mean") -> Tensor:
    r"""Peak signal-to-noise ratio of images, in decibels, per image:

    .. math::
        \mathrm{PSNR} = 10 \log_{10} \frac{\text{max\_value}^2}
        {\frac{1}{H W C} \sum_{h, w, c} (\hat y_{hwc} - y_{hwc})^2}.

    Identical images give :math:`+\infty`. Differentiable in ``prediction``.

    Args:
        prediction (Tensor): rendered images, floating point, finite.
        target (Tensor): ground-truth images of the same shape.
        max_value (float, optional): the largest possible pixel value.
            (default: ``1.0``)
        reduction (str, optional): ``"mean"`` averages the per-image PSNRs,
            ``"none"`` returns them. (default: ``"mean"``)

    Shapes:
        - prediction, target: :math:`(\ldots, H, W, C)`
        - output: :math:`()` for ``"mean"``, :math:`(\ldots)` for ``"none"``

    Raises:
        TypeError: a non-tensor or non-floating-point input.
        ValueError: fewer than 3 dimensions, different shapes, non-finite
            values, an unknown reduction, ``max_value <= 0``.
    """
    _check_images(prediction, target, reduction)
    max_value = _check_max_value("max_value", max_value)
    mse = (prediction - target).square().mean(dim=(-3, -2, -1))
    values = 20.0 * math.log10(max_value) - 10.0 * torch.log10(mse)
    return values.mean() if reduction == "mean" else values


def ssim(prediction: Tensor, target: Tensor, data_range: float = 1.0, reduction: str = "mean") -> Tensor:
    r"""Structural similarity of images (`Wang et al. 2004
    <https://doi.org/10.1109/TIP.2003.819861>`_) with the settings NeRF papers
    report: an 11x11 Gaussian window of :math:`\sigma = 1.5`, population
    covariances, :math:`K_1 = 0.01`, :math:`K_2 = 0.03`, averaged over pixels
    and channels:

    .. math::
        \mathrm{SSIM}(x, y) = \frac{(2 \mu_x \mu_y + C_1)(2 \sigma_{xy} + C_2)}
        {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}, \qquad
        C_i = (K_i L)^2,

    with :math:`L` = ``data_range``. Computed by scikit-image's
    ``structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range, channel_axis=-1)`` on
    each image (on the CPU, in float64 for float64 input and float32
    otherwise); not differentiable. Values are taken as they are, not clipped.

    Args:
        prediction (Tensor): rendered images, floating point, finite.
        target (Tensor): ground-truth images of the same shape.
        data_range (float, optional): :math:`L`, the range of pixel values.
            (default: ``1.0``)
        reduction (str, optional): ``"mean"`` averages the per-image values,
            ``"none"`` returns them. (default: ``"mean"``)

    Shapes:
        - prediction, target: :math:`(\ldots, H, W, C)` with
          :math:`H, W \ge 11` (the window)
        - output: :math:`()` for ``"mean"``, :math:`(\ldots)` for ``"none"``,
          on the device and in the floating dtype of ``prediction``

    Raises:
        TypeError: a non-tensor or non-floating-point input.
        ValueError: fewer than 3 dimensions, different shapes, non-finite
            values, images smaller than 11x11, an unknown reduction,
            ``data_range <= 0``.
    """
    _check_images(prediction, target, reduction)
    data_range = _check_max_value("data_range", data_range)
    height, width, channels = prediction.shape[-3:]
    # scikit-image's Gaussian window: radius int(truncate * sigma + 0.5) = 5 for truncate 3.5.
    window = 11
    if height < window or width < window:
        raise ValueError(f"ssim needs images of at least {window}x{window} pixels (its window), got {height}x{width}")
    # Imported here: scikit-image is a heavy import that only evaluation needs.
    from skimage.metrics import structural_similarity

    compute_dtype = torch.float64 if prediction.dtype == torch.float64 else torch.float32
    predictions = prediction.detach().to("cpu", compute_dtype).reshape(-1, height, width, channels).numpy()
    targets = target.detach().to("cpu", compute_dtype).reshape(-1, height, width, channels).numpy()
    values = [
        structural_similarity(
            predicted,
            expected,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
            channel_axis=-1,
        )
        for predicted, expected in zip(predictions, targets)
    ]
    values = torch.tensor(values, dtype=prediction.dtype, device=prediction.device).reshape(prediction.shape[:-3])
    return values.mean() if reduction == "mean" else values
