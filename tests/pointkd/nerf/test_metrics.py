import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from pointkd.nerf.metrics import mse_to_psnr, psnr, ssim


def _images(*shape, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator, dtype=dtype)


def _smooth_image(size=32, seed=0):
    """A structured image (gradients and a disc), where SSIM is meaningful."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    disc = ((x - 0.4) ** 2 + (y - 0.6) ** 2 < 0.08).double()
    image = torch.stack((x, y, 0.5 * disc + 0.25), dim=-1).double()
    return (image + 0.02 * _images(size, size, 3, seed=seed)).clamp(0, 1)


def test_psnr_by_hand():
    target = torch.zeros(2, 4, 5, 3)
    prediction = target.clone()
    prediction[0] += 0.1  # MSE 0.01: 20 dB
    prediction[1, :2] += 0.02  # half the pixels off by 0.02: MSE 0.0002, 10 log10(5000) dB
    expected = torch.tensor([20.0, 10 * math.log10(5000)])
    torch.testing.assert_close(psnr(prediction, target, reduction="none"), expected)
    torch.testing.assert_close(psnr(prediction, target), expected.mean())
    # One image (H, W, 3) gives a 0-dim tensor either way; max_value scales the peak.
    torch.testing.assert_close(psnr(prediction[0], target[0]), torch.tensor(20.0))
    torch.testing.assert_close(psnr(255 * prediction[0], 255 * target[0], max_value=255.0), torch.tensor(20.0))
    assert psnr(target, target).item() == math.inf


def test_psnr_batch_dims_and_gradient():
    prediction = _images(2, 3, 8, 8, 3, dtype=torch.float32).requires_grad_()
    target = _images(2, 3, 8, 8, 3, seed=1, dtype=torch.float32)
    values = psnr(prediction, target, reduction="none")
    assert values.shape == (2, 3)
    torch.testing.assert_close(values[1, 2], psnr(prediction[1, 2], target[1, 2]))
    psnr(prediction, target).backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()


def test_mse_to_psnr():
    torch.testing.assert_close(mse_to_psnr(0.01), torch.tensor(20.0))
    torch.testing.assert_close(mse_to_psnr(torch.tensor([1.0, 1e-3])), torch.tensor([0.0, 30.0]))
    torch.testing.assert_close(mse_to_psnr(4.0, max_value=2.0), torch.tensor(0.0))
    assert mse_to_psnr(0.0).item() == math.inf
    mse = torch.tensor(0.01, requires_grad=True)
    mse_to_psnr(mse).backward()
    torch.testing.assert_close(mse.grad, torch.tensor(-10 / (math.log(10) * 0.01)))
    with pytest.raises(ValueError, match="mse must be finite and >= 0"):
        mse_to_psnr(-1.0)
    with pytest.raises(ValueError, match="mse must be finite and >= 0"):
        mse_to_psnr(torch.tensor([0.1, math.nan]))
    with pytest.raises(ValueError, match="max_value must be a finite number > 0"):
        mse_to_psnr(0.1, max_value=0.0)


def test_ssim_of_an_image_with_itself_is_one():
    image = _smooth_image()
    assert ssim(image, image).item() == pytest.approx(1.0, abs=1e-12)
    random = _images(16, 16, 3, dtype=torch.float32)
    assert ssim(random, random).item() == pytest.approx(1.0, abs=1e-6)


def test_ssim_decreases_with_noise():
    image = _smooth_image()
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    values = [ssim((image + level * noise).clamp(0, 1), image).item() for level in (0.01, 0.05, 0.2)]
    assert 1 > values[0] > values[1] > values[2]


def test_ssim_matches_skimage_and_is_symmetric():
    prediction, target = _images(20, 24, 3), _images(20, 24, 3, seed=1)
    expected = structural_similarity(
        prediction.numpy(),
        target.numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    assert ssim(prediction, target).item() == pytest.approx(expected, rel=1e-12)
    assert ssim(target, prediction).item() == pytest.approx(expected, rel=1e-12)
    assert ssim(prediction, target).dtype == torch.float64


def test_ssim_batches_and_grayscale():
    prediction, target = (
        _images(2, 3, 12, 12, 3, dtype=torch.float32),
        _images(2, 3, 12, 12, 3, seed=1, dtype=torch.float32),
    )
    values = ssim(prediction, target, reduction="none")
    assert values.shape == (2, 3) and values.dtype == torch.float32
    assert values[1, 0].item() == pytest.approx(ssim(prediction[1, 0], target[1, 0]).item(), abs=1e-7)
    assert ssim(prediction, target).item() == pytest.approx(values.mean().item(), abs=1e-7)
    gray = ssim(prediction[..., :1], target[..., :1], reduction="none")
    assert gray.shape == (2, 3)
    single = structural_similarity(
        prediction[0, 0, ..., 0].numpy(),
        target[0, 0, ..., 0].numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert gray[0, 0].item() == pytest.approx(float(np.float32(single)), abs=1e-6)


@pytest.mark.parametrize("metric", [psnr, ssim])
def test_bad_input(metric):
    image = _images(16, 16, 3)
    with pytest.raises(ValueError, match=r"same shape, got \[16, 16, 3\] and \[16, 15, 3\]"):
        metric(image, image[:, :15])
    bad = image.clone()
    bad[3, 4, 1] = math.nan
    with pytest.raises(ValueError, match="prediction must be finite"):
        metric(bad, image)
    bad[3, 4, 1] = math.inf
    with pytest.raises(ValueError, match="target must be finite"):
        metric(image, bad)
    with pytest.raises(ValueError, match=r"must be images \[..., H, W, C\]"):
        metric(image[0], image[0])
    with pytest.raises(TypeError, match="prediction must be floating point"):
        metric((image * 255).to(torch.uint8), image)
    with pytest.raises(TypeError, match="target must be a Tensor"):
        metric(image, image.numpy())
    with pytest.raises(ValueError, match="reduction must be one of"):
        metric(image, image, reduction="sum")


def test_ssim_needs_the_window():
    image = _images(10, 16, 3)
    with pytest.raises(ValueError, match="at least 11x11 pixels"):
        ssim(image, image)
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        ssim(_images(16, 16, 3), _images(16, 16, 3), data_range=-1.0)
