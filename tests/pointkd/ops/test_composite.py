import math

import pytest
import torch

from pointkd.ops import composite
from pointkd.ops.composite import _composite_reference
from tests.conftest import requires_cuda


def _samples(lengths, channels=3, dtype=torch.float64, generator=None, sigma_scale=2.0):
    """Random packed samples for rays of the given lengths, ts increasing along each ray."""
    generator = generator or torch.Generator().manual_seed(0)
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    ray_offsets = torch.zeros(lengths.numel() + 1, dtype=torch.long)
    ray_offsets[1:] = torch.cumsum(lengths, 0)
    num_samples = int(ray_offsets[-1])
    sigmas = torch.rand(num_samples, generator=generator, dtype=torch.float64) * sigma_scale
    rgbs = torch.rand(num_samples, channels, generator=generator, dtype=torch.float64)
    deltas = torch.rand(num_samples, generator=generator, dtype=torch.float64) * 0.2 + 0.01
    ts = torch.rand(num_samples, generator=generator, dtype=torch.float64) * 5
    return sigmas.to(dtype), rgbs.to(dtype), deltas.to(dtype), ts.to(dtype), ray_offsets


def _tolerances(dtype):
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


LENGTHS = [0, 1, 5, 0, 40, 3, 64, 0, 2, 17]


def _grads(fn, sigmas, rgbs, deltas, ts, ray_offsets, threshold, seed=1):
    sigmas = sigmas.clone().requires_grad_()
    rgbs = rgbs.clone().requires_grad_()
    out = fn(sigmas, rgbs, deltas, ts, ray_offsets, threshold)
    generator = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(o.shape, generator=generator, dtype=torch.float64).to(o) for o in out]
    loss = sum((o * g).sum() for o, g in zip(out, cotangents))
    return out, torch.autograd.grad(loss, (sigmas, rgbs))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threshold", [0.0, 1e-4, 0.3])
@pytest.mark.parametrize("channels", [3, 1, 8])
def test_matches_reference(dtype, threshold, channels):
    inputs = _samples(LENGTHS, channels, dtype)
    out, grads = _grads(composite, *inputs, threshold)
    expected, expected_grads = _grads(_composite_reference, *inputs, threshold)
    assert out.color.shape == (len(LENGTHS), channels) and out.weights.shape == inputs[0].shape
    for ours, theirs in zip((*out, *grads), (*expected, *expected_grads)):
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, theirs, **_tolerances(dtype))


def test_empty_rays_and_single_sample():
    sigmas, rgbs, deltas, ts, ray_offsets = _samples([0, 1, 0], 3)
    out = composite(sigmas, rgbs, deltas, ts, ray_offsets)
    zero = torch.zeros((), dtype=torch.float64)
    for r in (0, 2):
        assert torch.equal(out.color[r], torch.zeros(3, dtype=torch.float64))
        assert out.opacity[r] == zero and out.depth[r] == zero
    alpha = 1 - torch.exp(-sigmas[0] * deltas[0])
    torch.testing.assert_close(out.opacity[1], alpha)
    torch.testing.assert_close(out.color[1], alpha * rgbs[0])
    torch.testing.assert_close(out.depth[1], alpha * ts[0])
    # No rays, no samples at all.
    empty = composite(*(t[:0] for t in (sigmas, rgbs, deltas, ts)), torch.zeros(1, dtype=torch.long))
    assert empty.color.shape == (0, 3) and empty.weights.shape == (0,)


def test_analytic_constant_density():
    # Constant sigma over a segment of length L: opacity = 1 - exp(-sigma L), whatever the split.
    sigma, length, steps = 0.7, 3.0, 50
    ray_offsets = torch.tensor([0, steps, 2 * steps + 1], dtype=torch.long)
    deltas = torch.cat(
        [torch.full((steps,), length / steps, dtype=torch.float64), torch.rand(steps + 1, dtype=torch.float64) * length]
    )
    deltas[steps:] *= length / deltas[steps:].sum()
    sigmas = torch.full((2 * steps + 1,), sigma, dtype=torch.float64)
    rgbs = torch.ones(2 * steps + 1, 3, dtype=torch.float64)
    out = composite(sigmas, rgbs, deltas, torch.zeros_like(sigmas), ray_offsets, 0.0)
    expected = torch.full((2,), 1 - math.exp(-sigma * length), dtype=torch.float64)
    torch.testing.assert_close(out.opacity, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.color, expected[:, None].expand(2, 3), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_early_termination(dtype):
    # Dense samples: T drops by e^-1 per sample, so it falls below 1e-4 after 10 samples (e^-9.21).
    num = 30
    sigmas = torch.full((num,), 10.0, dtype=dtype)
    deltas = torch.full((num,), 0.1, dtype=dtype)
    rgbs = torch.rand(num, 3, dtype=torch.float64).to(dtype)
    ts = torch.arange(num, dtype=dtype)
    ray_offsets = torch.tensor([0, num], dtype=torch.long)
    out, grads = _grads(composite, sigmas, rgbs, deltas, ts, ray_offsets, 1e-4)
    kept = 10  # T_9 = e^-9 > 1e-4 > T_10 = e^-10
    assert (out.weights[:kept] > 0).all() and (out.weights[kept:] == 0).all()
    assert (grads[0][kept:] == 0).all() and (grads[1][kept:] == 0).all()
    assert (grads[1][:kept] != 0).all()
    expected, expected_grads = _grads(_composite_reference, sigmas, rgbs, deltas, ts, ray_offsets, 1e-4)
    for ours, theirs in zip((*out, *grads), (*expected, *expected_grads)):
        torch.testing.assert_close(ours, theirs, **_tolerances(dtype))
    torch.testing.assert_close(out.opacity, 1 - torch.exp(-torch.tensor([float(kept)], dtype=dtype)))


def test_gradcheck():
    sigmas, rgbs, deltas, ts, ray_offsets = _samples([0, 1, 4, 7, 2], 3)
    sigmas.requires_grad_()
    rgbs.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda s, c: tuple(composite(s, c, deltas, ts, ray_offsets, 0.0)), (sigmas, rgbs), eps=1e-6, atol=1e-7
    )


def test_partial_outputs_and_no_rgb_grad():
    sigmas, rgbs, deltas, ts, ray_offsets = _samples([3, 0, 6], 2)
    sigmas.requires_grad_()
    (grad,) = torch.autograd.grad(composite(sigmas, rgbs, deltas, ts, ray_offsets).depth.sum(), sigmas)
    (expected,) = torch.autograd.grad(_composite_reference(sigmas, rgbs, deltas, ts, ray_offsets).depth.sum(), sigmas)
    torch.testing.assert_close(grad, expected, rtol=1e-10, atol=1e-10)


def test_non_contiguous():
    sigmas, rgbs, deltas, ts, ray_offsets = _samples(LENGTHS, 3)
    wide = torch.stack([rgbs, rgbs], 2)[..., 0]
    assert not wide.is_contiguous()
    strided_sigmas = torch.stack([sigmas, sigmas], 1)[:, 0]
    out = composite(strided_sigmas, wide, deltas, ts, ray_offsets)
    expected = composite(sigmas, rgbs.contiguous(), deltas, ts, ray_offsets)
    for ours, theirs in zip(out, expected):
        assert torch.equal(ours, theirs)


def test_opcheck():
    sigmas, rgbs, deltas, ts, ray_offsets = _samples([0, 3, 5, 1], 3)
    torch.library.opcheck(torch.ops.pointkd.composite.default, (sigmas, rgbs, deltas, ts, ray_offsets, 1e-4))
    generator = torch.Generator().manual_seed(3)
    grads = (
        torch.randn(4, 3, generator=generator, dtype=torch.float64),
        torch.randn(4, generator=generator, dtype=torch.float64),
        torch.randn(4, generator=generator, dtype=torch.float64),
        torch.randn(9, generator=generator, dtype=torch.float64),
    )
    for need_rgbs in (True, False):
        torch.library.opcheck(
            torch.ops.pointkd.composite_backward.default,
            (*grads, sigmas, rgbs, deltas, ts, ray_offsets, 1e-4, need_rgbs),
        )


def test_bad_inputs():
    sigmas, rgbs, deltas, ts, ray_offsets = _samples([2, 3], 3)
    good = {"sigmas": sigmas, "rgbs": rgbs, "deltas": deltas, "ts": ts, "ray_offsets": ray_offsets}

    def call(**changes):
        return composite(**{**good, **changes})

    cases = [
        ({"ray_offsets": torch.tensor([0, 3, 2, 5])}, r"ray_offsets must be non-decreasing"),
        ({"ray_offsets": torch.tensor([1, 2, 5])}, r"ray_offsets must start at 0"),
        ({"ray_offsets": torch.tensor([0, 2, 4])}, r"ray_offsets must end at the number of samples S = 5"),
        ({"ray_offsets": torch.tensor([0, 2, 7])}, r"ray_offsets must end"),
        ({"ray_offsets": ray_offsets.int()}, r"ray_offsets must be an int64 tensor"),
        ({"ray_offsets": torch.zeros(0, dtype=torch.long)}, r"ray_offsets must be an int64 tensor of shape \[R \+ 1\]"),
        ({"rgbs": rgbs[:4]}, r"rgbs must be of shape \[S, C\]"),
        ({"rgbs": rgbs.float()}, r"rgbs must have the dtype and device of sigmas"),
        ({"deltas": deltas[:4]}, r"deltas must be of shape \[S\] with S = 5"),
        ({"ts": ts[:, None]}, r"ts must be of shape \[S\]"),
        ({"sigmas": sigmas.long()}, r"sigmas must be a float32 or float64 tensor"),
        ({"sigmas": -sigmas}, r"sigmas must be >= 0"),
        ({"sigmas": torch.where(torch.arange(5) == 2, float("nan"), sigmas)}, r"sigmas must be finite"),
        ({"rgbs": torch.full_like(rgbs, float("nan"))}, r"rgbs must be finite"),
        ({"deltas": -deltas}, r"deltas must be >= 0"),
        ({"ts": torch.full_like(ts, float("inf"))}, r"ts must be finite"),
    ]
    for changes, message in cases:
        with pytest.raises(RuntimeError, match=message):
            call(**changes)
    with pytest.raises(RuntimeError, match=r"transmittance_threshold must be finite and >= 0"):
        composite(sigmas, rgbs, deltas, ts, ray_offsets, -1.0)
    with pytest.raises(TypeError, match=r"sigmas must be a Tensor"):
        composite([1.0], rgbs, deltas, ts, ray_offsets)


@requires_cuda
@pytest.mark.parametrize("threshold", [0.0, 1e-4])
def test_cuda_matches_cpu(threshold):
    inputs = _samples([0, 1, 100, 7] * 50, 3, sigma_scale=20.0)
    results = [_grads(composite, *inputs, threshold)]
    cuda_out, cuda_grads = _grads(composite, *(t.cuda() for t in inputs), threshold)
    for cpu, cuda in zip((*results[0][0], *results[0][1]), (*cuda_out, *cuda_grads)):
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-10, atol=1e-10)
