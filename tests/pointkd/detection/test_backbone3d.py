"""SECOND's MeanVFE, VoxelBackBone8x and HeightCompression against dense references."""

from __future__ import annotations

import copy

import pytest
import spconv.pytorch as spconv
import torch
import torch.nn.functional as F
from spconv.pytorch.conv import SparseConvolution
from torch import nn

from pointkd.detection import sparse
from pointkd.detection.backbone3d import HeightCompression, MeanVFE, VoxelBackBone8x
from pointkd.detection.sparse import SparseConvTensor, torch_num_threads
from tests.conftest import requires_cuda


def random_voxels(grid_size, batch_size, num, in_channels=4, dtype=torch.float64, seed=0):
    """``num`` unique voxels (batch, z, y, x) inside ``grid_size = (nx, ny, nz)`` with random features."""
    nx, ny, nz = grid_size
    generator = torch.Generator().manual_seed(seed)
    linear = torch.randperm(batch_size * nz * ny * nx, generator=generator)[:num]
    coords = torch.stack(
        [linear // (nz * ny * nx), linear // (ny * nx) % nz, linear // nx % ny, linear % nx], dim=1
    ).to(torch.int32)
    return torch.randn(num, in_channels, dtype=dtype, generator=generator), coords


def randomize(module, seed=1):
    """Unit-scale weights and BatchNorm statistics, so that no layer hides errors."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            elif name.endswith("weight") and tensor.dim() > 1:
                values = values / (tensor[0].numel() ** 0.5)  # keep activations O(1) through 15 layers
            tensor.copy_(values)
    return module


def occupancy(coords, spatial_shape, batch_size, dtype):
    mask = torch.zeros(batch_size, 1, *spatial_shape, dtype=dtype)
    c = coords.long()
    mask[c[:, 0], 0, c[:, 1], c[:, 2], c[:, 3]] = 1
    return mask


def masked_batch_norm(x, mask, norm):
    """BatchNorm1d over the active sites only (batch statistics in training, running ones in eval)."""
    if norm.training:
        count = mask.sum()
        mean = (x * mask).sum(dim=(0, 2, 3, 4)) / count
        var = ((x - mean.view(1, -1, 1, 1, 1)) ** 2 * mask).sum(dim=(0, 2, 3, 4)) / count
    else:
        mean, var = norm.running_mean, norm.running_var
    shape = (1, -1, 1, 1, 1)
    scale = norm.weight / torch.sqrt(var + norm.eps)
    return ((x - mean.view(shape)) * scale.view(shape) + norm.bias.view(shape)) * mask


def dense_backbone(model, voxel_features, voxel_coords, batch_size):
    """The backbone as dense conv3d + masks: SubM keeps the input's sites, a strided conv is active
    wherever its receptive field covers an active site, BatchNorm sees active sites only."""
    x = voxel_features.new_zeros(batch_size, *model.sparse_shape, voxel_features.shape[1])
    x = x.index_put(tuple(voxel_coords.long().unbind(1)), voxel_features).movedim(-1, 1)
    mask = occupancy(voxel_coords, model.sparse_shape, batch_size, voxel_features.dtype)
    stages = {}
    for stage_name in ("conv_input", "conv1", "conv2", "conv3", "conv4", "conv_out"):
        stage = getattr(model, stage_name)
        blocks = [stage] if isinstance(stage[0], SparseConvolution) else list(stage)
        for block in blocks:
            conv, norm, relu = block
            weight = conv.weight.permute(0, 4, 1, 2, 3)
            if conv.subm:
                x = F.conv3d(x, weight, padding=[k // 2 for k in conv.kernel_size]) * mask
            else:
                ones = torch.ones(1, 1, *conv.kernel_size, dtype=x.dtype)
                mask = (F.conv3d(mask, ones, stride=conv.stride, padding=conv.padding) > 0).to(x.dtype)
                x = F.conv3d(x, weight, stride=conv.stride, padding=conv.padding) * mask
            x = relu(masked_batch_norm(x, mask, norm)) * mask
        stages[stage_name] = (x, mask)
    batch, channels, depth, height, width = x.shape
    return x.reshape(batch, channels * depth, height, width), stages


def at_sites(dense, coords):
    c = coords.long()
    return dense[c[:, 0], :, c[:, 1], c[:, 2], c[:, 3]]


# ---------------------------------------------------------------- MeanVFE


def test_mean_vfe_averages_the_valid_points_only():
    voxels = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0], [99.0, 99.0]],  # 2 points, the third row is garbage padding
            [[5.0, 6.0], [0.0, 0.0], [0.0, 0.0]],
            [[7.0, 7.0], [7.0, 7.0], [7.0, 7.0]],  # no points
        ]
    )
    out = MeanVFE(2)(voxels, torch.tensor([2, 1, 0], dtype=torch.int32))
    torch.testing.assert_close(out, torch.tensor([[2.0, 3.0], [5.0, 6.0], [0.0, 0.0]]))


def test_mean_vfe_matches_openpcdet_on_zero_padding():
    generator = torch.Generator().manual_seed(0)
    num_points = torch.randint(1, 6, (50,), generator=generator)
    voxels = torch.randn(50, 5, 4, generator=generator)
    voxels[torch.arange(5)[None, :] >= num_points[:, None]] = 0
    openpcdet = voxels.sum(dim=1) / num_points.clamp(min=1).view(-1, 1).float()
    torch.testing.assert_close(MeanVFE(4)(voxels, num_points), openpcdet)


@pytest.mark.parametrize(
    "voxels, num_points, match",
    [
        (torch.zeros(3, 5), torch.ones(3, dtype=torch.long), "voxels must be"),
        (torch.zeros(3, 5, 3), torch.ones(3, dtype=torch.long), "voxels must be"),
        (torch.zeros(3, 5, 4, dtype=torch.long), torch.ones(3, dtype=torch.long), "floating point"),
        (torch.zeros(3, 5, 4), torch.ones(3), "num_points must be an integer"),
        (torch.zeros(3, 5, 4), torch.ones(2, dtype=torch.long), "num_points must be an integer"),
        (torch.zeros(3, 5, 4), torch.tensor([1, 6, 1]), r"num_points must lie in \[0, 5\]"),
    ],
)
def test_mean_vfe_bad_input(voxels, num_points, match):
    with pytest.raises(ValueError, match=match):
        MeanVFE(4)(voxels, num_points)


# ---------------------------------------------------------------- VoxelBackBone8x

# width -> (conv_input, x_conv1, x_conv2, x_conv3, x_conv4, conv_out) channels
EXPECTED_CHANNELS = {
    1.0: (16, 16, 32, 64, 64, 128),
    0.5: (8, 8, 16, 32, 32, 64),
    0.25: (8, 8, 8, 16, 16, 32),
}


@pytest.mark.parametrize("width", sorted(EXPECTED_CHANNELS))
def test_output_shapes_and_widths(width):
    grid_size = (64, 64, 40)  # sparse shape (41, 64, 64)
    model = VoxelBackBone8x(4, grid_size, width=width)
    features, coords = random_voxels(grid_size, batch_size=2, num=3000, dtype=torch.float32)
    out = model(features, coords, batch_size=2)

    c_input, c1, c2, c3, c4, c_out = EXPECTED_CHANNELS[width]
    assert model.sparse_shape == [41, 64, 64]
    assert model.conv_input[0].out_channels == c_input
    assert model.backbone_channels == {"x_conv1": c1, "x_conv2": c2, "x_conv3": c3, "x_conv4": c4}
    assert model.num_point_features == c_out
    assert model.num_bev_features == 2 * c_out and model.bev_shape == (8, 8)
    assert out["spatial_features"].shape == (2, 2 * c_out, 8, 8)
    assert out["spatial_features_stride"] == 8 and out["encoded_spconv_tensor_stride"] == 8
    assert out["encoded_spconv_tensor"].spatial_shape == [2, 8, 8]
    shapes = {"x_conv1": [41, 64, 64], "x_conv2": [21, 32, 32], "x_conv3": [11, 16, 16], "x_conv4": [5, 8, 8]}
    channels = {"x_conv1": c1, "x_conv2": c2, "x_conv3": c3, "x_conv4": c4}
    for name, tensor in out["multi_scale_3d_features"].items():
        assert tensor.spatial_shape == shapes[name]
        assert tensor.features.shape == (tensor.indices.shape[0], channels[name])
    assert out["multi_scale_3d_strides"] == {"x_conv1": 1, "x_conv2": 2, "x_conv3": 4, "x_conv4": 8}
    # Parameters shrink roughly with width squared.
    assert sum(p.numel() for p in model.parameters()) < {1.0: 1e6, 0.5: 2.2e5, 0.25: 6e4}[width]


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("width", [1.0, 0.25])
def test_matches_dense_reference(width, training):
    grid_size = (16, 24, 40)
    model = randomize(VoxelBackBone8x(4, grid_size, width=width).double()).train(training)
    reference_model = copy.deepcopy(model)
    features, coords = random_voxels(grid_size, batch_size=2, num=3000)
    features.requires_grad_(True)
    reference_features = features.detach().clone().requires_grad_(True)

    out = model(features, coords, batch_size=2)
    expected, stages = dense_backbone(reference_model, reference_features, coords, 2)

    assert out["spatial_features"].shape == expected.shape == (2, model.num_bev_features, 3, 2)
    assert expected.abs().max() > 1e-2, "the reference must not be trivially zero"
    torch.testing.assert_close(out["spatial_features"], expected, rtol=1e-9, atol=1e-9)
    for name, stage in (("x_conv1", "conv1"), ("x_conv2", "conv2"), ("x_conv3", "conv3"), ("x_conv4", "conv4")):
        tensor = out["multi_scale_3d_features"][name]
        dense, mask = stages[stage]
        assert torch.equal(occupancy(tensor.indices, tensor.spatial_shape, 2, torch.float64), mask), name
        torch.testing.assert_close(tensor.features, at_sites(dense, tensor.indices), rtol=1e-9, atol=1e-9)

    upstream = torch.randn(expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    (out["spatial_features"] * upstream).sum().backward()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(features.grad, reference_features.grad, rtol=1e-8, atol=1e-9)
    assert features.grad.abs().max() > 0
    reference_parameters = dict(reference_model.named_parameters())
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, reference_parameters[name].grad, rtol=1e-8, atol=1e-9, msg=name)


def _as_raw_spconv(model):
    """The same model with spconv's own convolution classes (same parameters and buffers)."""
    raw = copy.deepcopy(model)
    classes = {
        sparse.SubMConv3d: spconv.SubMConv3d,
        sparse.SparseConv3d: spconv.SparseConv3d,
    }
    for module in raw.modules():
        if type(module) in classes:
            module.__class__ = classes[type(module)]
    return raw


def test_matches_raw_spconv_forward_with_one_thread():
    grid_size = (32, 40, 40)
    model = randomize(VoxelBackBone8x(4, grid_size, width=0.5)).eval()
    raw = _as_raw_spconv(model)
    assert isinstance(raw.conv2[0][0], spconv.SparseConv3d) and not isinstance(raw.conv2[0][0], sparse.SparseConv3d)
    features, coords = random_voxels(grid_size, batch_size=2, num=4000, dtype=torch.float32)
    with torch.no_grad(), torch_num_threads(1):
        ours = model(features, coords, batch_size=2)
        theirs = raw(features, coords, batch_size=2)
    torch.testing.assert_close(ours["spatial_features"], theirs["spatial_features"], rtol=1e-4, atol=1e-4)


def test_backward_gives_finite_gradients():
    grid_size = (64, 64, 40)
    model = VoxelBackBone8x(4, grid_size, width=0.5).train()
    features, coords = random_voxels(grid_size, batch_size=2, num=3000, dtype=torch.float32)
    features.requires_grad_(True)
    out = model(features, coords, batch_size=2)
    out["spatial_features"].square().mean().backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def _forward_backward(model, features, coords, threads):
    model.zero_grad()
    inputs = features.clone().requires_grad_(True)
    with torch_num_threads(threads):
        out = model(inputs, coords, batch_size=2)
        out["spatial_features"].square().mean().backward()
    return out["spatial_features"].detach(), inputs.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


def test_deterministic_and_independent_of_threads():
    grid_size = (64, 64, 40)
    model = randomize(VoxelBackBone8x(4, grid_size, width=0.5)).eval()
    features, coords = random_voxels(grid_size, batch_size=2, num=6000, dtype=torch.float32)
    first = _forward_backward(model, features, coords, threads=1)
    second = _forward_backward(model, features, coords, threads=1)
    two_threads = _forward_backward(model, features, coords, threads=2)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    for name in first[2]:
        assert torch.equal(first[2][name], second[2][name]), name
    # Forward values are bitwise equal; gradients may differ by GEMM rounding only.
    assert torch.equal(first[0], two_threads[0])
    torch.testing.assert_close(first[1], two_threads[1], rtol=1e-4, atol=1e-6 * float(first[1].abs().max()))
    for name in first[2]:
        scale = float(first[2][name].abs().max())
        torch.testing.assert_close(first[2][name], two_threads[2][name], rtol=1e-4, atol=1e-5 * scale, msg=name)


@requires_cuda
def test_cuda_matches_cpu():
    grid_size = (64, 64, 40)
    model = randomize(VoxelBackBone8x(4, grid_size, width=0.5)).eval()
    features, coords = random_voxels(grid_size, batch_size=2, num=3000, dtype=torch.float32)
    with torch.no_grad():
        expected = model(features, coords, 2)["spatial_features"]
        got = copy.deepcopy(model).cuda()(features.cuda(), coords.cuda(), 2)["spatial_features"]
    scale = float(expected.abs().max())
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-3, atol=1e-3 * scale)


def test_state_dict_uses_openpcdet_names_and_spconv_layout():
    state = VoxelBackBone8x(4, (64, 64, 40)).state_dict()
    assert state["conv_input.0.weight"].shape == (16, 3, 3, 3, 4)
    assert state["conv1.0.0.weight"].shape == (16, 3, 3, 3, 16)
    assert state["conv2.0.0.weight"].shape == (32, 3, 3, 3, 16)
    assert state["conv4.2.0.weight"].shape == (64, 3, 3, 3, 64)
    assert state["conv_out.0.weight"].shape == (128, 3, 1, 1, 64)
    assert "conv_out.1.running_mean" in state and "conv3.1.1.num_batches_tracked" in state
    # OpenPCDet's convolutions have no bias (BatchNorm follows).
    assert "conv_input.0.bias" not in state and "conv2.0.0.bias" not in state and "conv_out.0.bias" not in state


def test_height_compression_is_channel_major():
    features = torch.arange(12.0).view(3, 4)
    coords = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 2]], dtype=torch.int32)
    bev = HeightCompression()(SparseConvTensor(features, coords, [2, 2, 3], 2))
    assert bev.shape == (2, 8, 2, 3)
    # channel c of slice d lands in BEV channel c * D + d.
    torch.testing.assert_close(bev[0, :, 0, 0], torch.tensor([0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]))
    torch.testing.assert_close(bev[1, 1::2, 1, 2], features[2])


GRID = (16, 24, 40)


def _good_inputs():
    return random_voxels(GRID, batch_size=2, num=100, dtype=torch.float32)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f, c, b: (f, c[:, :3], b), r"voxel_coords must be \(V, 4\)"),
        (lambda f, c, b: (f, c[None], b), r"voxel_coords must be \(V, 4\)"),
        (lambda f, c, b: (f, c.float(), b), "voxel_coords must be an integer tensor"),
        (lambda f, c, b: (f, c[:-1], b), "voxel_coords must have one row per voxel_features row"),
        (lambda f, c, b: (f, _set(c, 0, 3, GRID[0]), b), r"voxel_coords must lie inside grid_size.*on x"),
        (lambda f, c, b: (f, _set(c, 0, 2, GRID[1]), b), r"voxel_coords must lie inside grid_size.*on y"),
        (lambda f, c, b: (f, _set(c, 0, 1, GRID[2]), b), r"voxel_coords must lie inside grid_size.*on z"),
        (lambda f, c, b: (f, _set(c, 0, 1, -1), b), r"voxel_coords must lie inside grid_size.*on z"),
        (lambda f, c, b: (f, _set(c, 0, 0, 2), b), r"voxel_coords batch index must lie in \[0, batch_size=2\)"),
        (lambda f, c, b: (f, c, 1), r"voxel_coords batch index must lie in \[0, batch_size=1\)"),
        (lambda f, c, b: (f, torch.cat([c[:1], c[:-1]]), b), "voxel_coords must be unique"),
        (lambda f, c, b: (f[:, :3], c, b), r"voxel_features must be floating point of shape \(V, 4\)"),
        (lambda f, c, b: (f.long(), c, b), "voxel_features must be floating point"),
        (lambda f, c, b: (f[0], c, b), r"voxel_features must be a \(V, 4\) tensor"),
        (lambda f, c, b: (f[:0], c[:0], b), "at least one voxel"),
        (lambda f, c, b: (f, c, 0), "batch_size must be a positive int"),
        (lambda f, c, b: (f, c, 2.0), "batch_size must be a positive int"),
    ],
)
def test_bad_input_raises(mutate, match):
    features, coords = _good_inputs()
    model = VoxelBackBone8x(4, GRID, width=0.25)
    with pytest.raises(ValueError, match=match):
        model(*mutate(features, coords, 2))


def _set(coords, row, column, value):
    coords = coords.clone()
    coords[row, column] = value
    return coords


def test_int64_coords_accepted():
    features, coords = _good_inputs()
    model = VoxelBackBone8x(4, GRID, width=0.25).eval()
    with torch.no_grad():
        expected = model(features, coords, 2)["spatial_features"]
        got = model(features, coords.long(), 2)["spatial_features"]
    assert torch.equal(expected, got)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"in_channels": 0, "grid_size": GRID}, "in_channels"),
        ({"in_channels": 4, "grid_size": (16, 24)}, "grid_size must be three positive ints"),
        ({"in_channels": 4, "grid_size": (16, 24, 0)}, "grid_size must be three positive ints"),
        ({"in_channels": 4, "grid_size": (16, 24, 20)}, "too small"),
        ({"in_channels": 4, "grid_size": GRID, "width": 0.0}, "width must be a positive number"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VoxelBackBone8x(**kwargs)


def test_sequential_of_plain_modules_is_untouched():
    # BatchNorm1d and ReLU inside SparseSequential act on the features of the active sites.
    block = sparse.SparseSequential(nn.BatchNorm1d(4).eval(), nn.ReLU())
    features, coords = _good_inputs()
    out = block(SparseConvTensor(features, coords, [41, 24, 16], 2))
    torch.testing.assert_close(out.features, torch.relu(features / (1 + 1e-5) ** 0.5))
