"""The spconv shim against dense conv3d references, spconv itself, and spconv's CPU faults."""

from __future__ import annotations

import copy

import pytest
import spconv.pytorch as spconv
import torch
import torch.nn.functional as F
from spconv import __version__ as spconv_version

from pointkd.detection.sparse import (
    SparseConv3d,
    SparseConvTensor,
    SparseInverseConv3d,
    SparseSequential,
    SubMConv3d,
    _gather_gemm_scatter_reference,
    _rulebook_plan,
    gather_gemm_scatter,
    sparse_to_dense,
    torch_num_threads,
)
from tests.conftest import requires_cuda


def random_sparse(num, channels, spatial_shape, batch_size=2, dtype=torch.float64, seed=0):
    """``num`` unique random sites (batch, z, y, x) with random features."""
    generator = torch.Generator().manual_seed(seed)
    sites = batch_size * spatial_shape[0] * spatial_shape[1] * spatial_shape[2]
    linear = torch.randperm(sites, generator=generator)[:num]
    columns = []
    for size in reversed(spatial_shape):
        columns.append(linear % size)
        linear = linear // size
    columns.append(linear)
    coords = torch.stack(columns[::-1], dim=1).to(torch.int32)
    features = torch.randn(num, channels, dtype=dtype, generator=generator)
    return features, coords


def randomize(module, seed=1):
    """Weights (and biases) of unit scale so that errors are not hidden by tiny values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return module


def dense_grid(features, coords, spatial_shape, batch_size):
    """(B, C, D, H, W) with the features at their sites (index_put, so autograd flows)."""
    dense = features.new_zeros(batch_size, *spatial_shape, features.shape[1])
    dense = dense.index_put(tuple(coords.long().unbind(1)), features)
    return dense.movedim(-1, 1)


def occupancy(coords, spatial_shape, batch_size, dtype):
    mask = torch.zeros(batch_size, 1, *spatial_shape, dtype=dtype)
    c = coords.long()
    mask[c[:, 0], 0, c[:, 1], c[:, 2], c[:, 3]] = 1
    return mask


def dense_reference(layer, features, coords, spatial_shape, batch_size):
    """The dense conv3d a sparse layer must equal at its output sites, and its active-site mask.

    SubM: conv3d with 'same' padding, kept at the input's sites. SparseConv3d: conv3d with the
    layer's stride/padding/dilation, active wherever the receptive field covers an input site.
    """
    x = dense_grid(features, coords, spatial_shape, batch_size)
    weight = layer.weight.permute(0, 4, 1, 2, 3)  # spconv (out, kz, ky, kx, in) -> torch (out, in, kz, ky, kx)
    mask = occupancy(coords, spatial_shape, batch_size, features.dtype)
    if layer.subm:
        padding = [d * (k // 2) for k, d in zip(layer.kernel_size, layer.dilation)]
        out = F.conv3d(x, weight, layer.bias, padding=padding, dilation=layer.dilation)
        return out * mask, mask
    out = F.conv3d(x, weight, layer.bias, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    ones = torch.ones(1, 1, *layer.kernel_size, dtype=features.dtype)
    reach = F.conv3d(mask, ones, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    out_mask = (reach > 0).to(features.dtype)
    return out * out_mask, out_mask


def at_sites(dense, coords):
    c = coords.long()
    return dense[c[:, 0], :, c[:, 1], c[:, 2], c[:, 3]]


LAYERS = {
    "subm3": lambda: SubMConv3d(5, 7, 3, padding=1, bias=True, indice_key="subm"),
    "subm_315_dil2": lambda: SubMConv3d(5, 7, (3, 1, 5), dilation=2, bias=False),
    "conv3_s1_p1": lambda: SparseConv3d(5, 7, 3, stride=1, padding=1, bias=True),
    "conv3_s2_p1": lambda: SparseConv3d(5, 7, 3, stride=2, padding=1, bias=False),
    "conv3_s2_p011": lambda: SparseConv3d(5, 7, 3, stride=2, padding=(0, 1, 1), bias=False),
    "conv311_s211": lambda: SparseConv3d(5, 7, (3, 1, 1), stride=(2, 1, 1), padding=0, bias=True),
    "conv2_s2": lambda: SparseConv3d(5, 7, 2, stride=2, bias=False),
    "conv3_s1_dil2": lambda: SparseConv3d(5, 7, 3, stride=1, padding=2, dilation=2, bias=False),
}
SPATIAL_SHAPE = [9, 10, 11]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_dense_conv3d(name, threads):
    layer = randomize(LAYERS[name]().double())
    features, coords = random_sparse(300, 5, SPATIAL_SHAPE)
    features.requires_grad_(True)
    with torch_num_threads(threads):
        out = layer(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))
    reference_layer = copy.deepcopy(layer)
    reference_features = features.detach().clone().requires_grad_(True)
    reference, out_mask = dense_reference(reference_layer, reference_features, coords, SPATIAL_SHAPE, 2)

    # Values at the output sites, and the output sites are exactly the reference's active sites.
    assert list(out.spatial_shape) == list(reference.shape[2:])
    torch.testing.assert_close(out.features, at_sites(reference, out.indices), rtol=1e-10, atol=1e-10)
    produced = occupancy(out.indices, out.spatial_shape, 2, torch.float64)
    assert torch.equal(produced, out_mask), "output sites differ from the dense receptive-field rule"
    assert out.indices.unique(dim=0).shape[0] == out.indices.shape[0]
    if not layer.subm:
        # conv3d without the mask is zero (up to bias) wherever the sparse layer has no output.
        x = dense_grid(features.detach(), coords, SPATIAL_SHAPE, 2)
        unmasked = F.conv3d(
            x, layer.weight.detach().permute(0, 4, 1, 2, 3), None, layer.stride, layer.padding, layer.dilation
        )
        assert unmasked.mul(1 - produced).abs().max() == 0

    # Backward: gradients wrt features, weight and bias equal the dense reference's autograd.
    upstream = torch.randn(out.features.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    with torch_num_threads(threads):
        (out.features * upstream).sum().backward()
    dense_upstream = torch.zeros_like(reference)
    c = out.indices.long()
    dense_upstream[c[:, 0], :, c[:, 1], c[:, 2], c[:, 3]] = upstream
    (reference * dense_upstream).sum().backward()
    torch.testing.assert_close(features.grad, reference_features.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(layer.weight.grad, reference_layer.weight.grad, rtol=1e-10, atol=1e-10)
    if layer.bias is not None:
        torch.testing.assert_close(layer.bias.grad, reference_layer.bias.grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads", [1, 2])
def test_inverse_conv_matches_dense_transposed_conv(threads):
    down = randomize(SparseConv3d(5, 6, 3, stride=2, padding=1, bias=False, indice_key="down").double())
    up = randomize(SparseInverseConv3d(6, 4, 3, indice_key="down", bias=True).double(), seed=2)
    features, coords = random_sparse(300, 5, SPATIAL_SHAPE)
    with torch_num_threads(threads):
        hidden = down(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))
        hidden_features = hidden.features.detach().requires_grad_(True)
        out = up(hidden.replace_feature(hidden_features))
    assert torch.equal(out.indices, coords) and list(out.spatial_shape) == SPATIAL_SHAPE

    # The transposed conv3d of the strided layer's output, kept at the strided layer's input sites.
    reference_up = copy.deepcopy(up)
    reference_features = hidden_features.detach().clone().requires_grad_(True)
    x = dense_grid(reference_features, hidden.indices, hidden.spatial_shape, 2)
    natural = [(n - 1) * 2 - 2 + 3 for n in hidden.spatial_shape]
    output_padding = [s - n for s, n in zip(SPATIAL_SHAPE, natural)]
    transposed = F.conv_transpose3d(
        x, reference_up.weight.permute(4, 0, 1, 2, 3), reference_up.bias, 2, 1, output_padding
    )
    reference = transposed * occupancy(coords, SPATIAL_SHAPE, 2, torch.float64)
    torch.testing.assert_close(out.features, at_sites(reference, coords), rtol=1e-10, atol=1e-10)

    upstream = torch.randn(out.features.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    (out.features * upstream).sum().backward()
    at_sites(reference, coords).mul(upstream).sum().backward()
    torch.testing.assert_close(hidden_features.grad, reference_features.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(up.weight.grad, reference_up.weight.grad, rtol=1e-10, atol=1e-10)


def test_inverse_conv_needs_the_forward_rulebook():
    features, coords = random_sparse(50, 6, SPATIAL_SHAPE, dtype=torch.float32)
    with pytest.raises(ValueError, match="indice_key 'missing'"):
        SparseInverseConv3d(6, 4, 3, indice_key="missing")(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))


@pytest.mark.parametrize("subm", [True, False])
def test_gradcheck(subm):
    features, coords = random_sparse(12, 2, [4, 4, 4], batch_size=1)
    if subm:
        layer = SubMConv3d(2, 3, 3, bias=True, indice_key="k").double()
    else:
        layer = SparseConv3d(2, 3, 3, stride=2, padding=1, bias=True).double()
    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)

    def run(features, weight, bias):
        tensor = SparseConvTensor(features, coords, [4, 4, 4], 1)
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (tensor,)).features

    inputs = (features.requires_grad_(True), weight, bias)
    assert torch.autograd.gradcheck(run, inputs)
    assert torch.autograd.gradgradcheck(run, inputs)


def test_gather_gemm_scatter_gradcheck_inverse():
    features, coords = random_sparse(12, 2, [4, 4, 4], batch_size=1)
    layer = SparseConv3d(2, 3, 3, stride=2, padding=1, bias=False, indice_key="d").double()
    down = layer(SparseConvTensor(features, coords, [4, 4, 4], 1))
    rulebook = down.indice_dict["d"]
    weight = torch.randn(2, 3, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    inputs = torch.randn(down.features.shape[0], 3, dtype=torch.float64, requires_grad=True)

    def run(inputs, weight):
        return gather_gemm_scatter(
            inputs, weight, rulebook.indice_pairs, rulebook.indice_pair_num, 12, subm=False, inverse=True
        )

    assert torch.autograd.gradcheck(run, (inputs, weight))


def test_rulebook_is_independent_of_threads():
    # The shim relies on spconv's CPU rulebook generation, which (unlike its scatter-add) does not race.
    features, coords = random_sparse(3000, 1, [21, 40, 40], dtype=torch.float32)
    for layer in (SubMConv3d(1, 1, 3, indice_key="k"), SparseConv3d(1, 1, 3, stride=2, padding=1, indice_key="k")):
        rulebooks = []
        for threads in (1, 2):
            with torch_num_threads(threads):
                rulebooks.append(layer(SparseConvTensor(features, coords, [21, 40, 40], 2)).indice_dict["k"])
        for name in ("out_indices", "indice_pairs", "indice_pair_num"):
            assert torch.equal(getattr(rulebooks[0], name), getattr(rulebooks[1], name)), name


@pytest.mark.parametrize("subm", [True, False])
def test_hand_written_backward_matches_the_reference_chain(subm):
    features, coords = random_sparse(400, 6, SPATIAL_SHAPE, dtype=torch.float64)
    layer = SubMConv3d(6, 5, 3, indice_key="k") if subm else SparseConv3d(6, 5, 3, stride=2, padding=1, indice_key="k")
    rulebook = layer.double()(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2)).indice_dict["k"]
    weight = torch.randn(5, 3, 3, 3, 6, dtype=torch.float64, requires_grad=True)
    inputs = features.clone().requires_grad_(True)
    num_out = rulebook.out_indices.shape[0]
    out = gather_gemm_scatter(inputs, weight, rulebook.indice_pairs, rulebook.indice_pair_num, num_out, subm=subm)
    plan = _rulebook_plan(rulebook.indice_pairs, rulebook.indice_pair_num, 27, subm, False, inputs.device)
    expected = _gather_gemm_scatter_reference(inputs, weight, plan, num_out, subm)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(out.shape, dtype=torch.float64)
    grads = torch.autograd.grad(out, (inputs, weight), upstream)
    expected_grads = torch.autograd.grad(expected, (inputs, weight), upstream)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-12)


def test_gather_gemm_scatter_bad_shapes():
    pairs = torch.zeros(2, 27, 5, dtype=torch.int32)
    counts = torch.zeros(27, dtype=torch.int32)
    with pytest.raises(ValueError, match="same C_in"):
        gather_gemm_scatter(torch.zeros(5, 3), torch.zeros(4, 3, 3, 3, 2), pairs, counts, 5)
    with pytest.raises(ValueError, match=r"indice_pairs must be \(2, 27, N\)"):
        gather_gemm_scatter(torch.zeros(5, 2), torch.zeros(4, 3, 3, 3, 2), pairs[:, :8], counts, 5)
    with pytest.raises(ValueError, match=r"indice_pair_num must be \(27,\)"):
        gather_gemm_scatter(torch.zeros(5, 2), torch.zeros(4, 3, 3, 3, 2), pairs, counts[:8], 5)
    with pytest.raises(ValueError, match="num_out must equal"):
        gather_gemm_scatter(torch.zeros(5, 2), torch.zeros(4, 3, 3, 3, 2), pairs, counts, 6, subm=True)


def test_output_identical_with_one_and_two_threads():
    # A size at which raw spconv's CPU forward is wrong with 2 threads (see the test below).
    features, coords = random_sparse(3000, 16, [21, 40, 40], dtype=torch.float32)
    net = randomize(
        SparseSequential(
            SubMConv3d(16, 32, 3, bias=False, indice_key="s"),
            SparseConv3d(32, 32, 3, stride=2, padding=1, bias=False),
        )
    )
    results = []
    for threads in (1, 2):
        net.zero_grad()
        inputs = features.clone().requires_grad_(True)
        with torch_num_threads(threads):
            out = net(SparseConvTensor(inputs, coords, [21, 40, 40], 2))
            out.features.square().sum().backward()
        results.append((out.features.detach(), inputs.grad, [p.grad.clone() for p in net.parameters()]))
    (out_1, grad_1, weights_1), (out_2, grad_2, weights_2) = results
    assert torch.equal(out_1, out_2)
    torch.testing.assert_close(grad_1, grad_2, rtol=1e-5, atol=1e-5)
    for weight_grad_1, weight_grad_2 in zip(weights_1, weights_2):
        # GEMM may split the reduction over threads: equal up to float rounding.
        scale = float(weight_grad_1.abs().max())
        torch.testing.assert_close(weight_grad_1, weight_grad_2, rtol=1e-5, atol=1e-6 * scale)


def _raw_spconv_max_error(threads, repeats):
    """Largest error of raw spconv's CPU forward over up to ``repeats`` runs (stops at the first wrong one)."""
    features, coords = random_sparse(3000, 64, [21, 40, 40], dtype=torch.float32)
    layer = randomize(spconv.SparseConv3d(64, 16, 3, stride=2, padding=1, bias=False))
    with torch.no_grad():
        reference, _ = dense_reference(layer, features, coords, [21, 40, 40], 2)
    scale = float(reference.abs().max())
    worst = 0.0
    with torch.no_grad(), torch_num_threads(threads):
        for _ in range(repeats):
            out = layer(SparseConvTensor(features, coords, [21, 40, 40], 2))
            worst = max(worst, float((out.features - at_sites(reference, out.indices)).abs().max()))
            if worst > 1e-2 * scale:
                break
    return worst, scale


def test_raw_spconv_cpu_forward_is_wrong_with_two_threads():
    """Why the shim exists (1): spconv's CPU forward is wrong when torch has more than one thread.

    A race shows up only when both threads really run at once, so on a busy machine it may take a few
    tries; the test skips (it does not fail) when no try shows it.
    """
    error_1, scale = _raw_spconv_max_error(threads=1, repeats=1)
    assert error_1 < 1e-4 * scale, "raw spconv is expected to be right with one thread"
    error_2, _ = _raw_spconv_max_error(threads=2, repeats=20)
    if error_2 < 1e-2 * scale:
        pytest.skip(f"spconv {spconv_version}'s CPU forward was right in 20 runs with 2 threads (fixed, or a busy CPU)")
    assert error_2 > 1e-2 * scale


def test_raw_spconv_scatter_add_cpu_races():
    """The faulty kernel itself: with 2 threads some rows get another row's values, indices all distinct."""
    all_ops = pytest.importorskip("spconv.core_cc.csrc.sparse.all")
    from spconv.pytorch.cppcore import torch_tensor_to_tv

    generator = torch.Generator().manual_seed(0)
    rows, channels = 20000, 16
    for _ in range(30):
        out_rows = torch.randperm(2 * rows, generator=generator)[:rows].to(torch.int32)
        values = torch.randn(rows, channels, generator=generator)
        out = torch.zeros(2 * rows, channels)
        with torch_num_threads(2):
            all_ops.SpconvOps.scatter_add_cpu(
                torch_tensor_to_tv(out), torch_tensor_to_tv(values), torch_tensor_to_tv(out_rows)
            )
        expected = torch.zeros(2 * rows, channels).index_add_(0, out_rows.long(), values)
        if not torch.equal(out, expected):
            wrong_rows = int(((out - expected).abs().amax(dim=1) > 0).sum())
            assert 0 < wrong_rows < rows
            return
    pytest.skip(f"spconv {spconv_version}'s scatter_add_cpu was right in 30 runs with 2 threads")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fault is specific to CPU-only torch builds")
@pytest.mark.parametrize("layer_type", [spconv.SubMConv3d, spconv.SparseConv3d])
def test_raw_spconv_backward_fails_on_cpu_torch(layer_type):
    """Why the shim exists (2): spconv's backward asks for a CUDA stream on CPU torch."""
    features, coords = random_sparse(50, 4, [6, 6, 6], dtype=torch.float32)
    layer = layer_type(4, 8, 3, bias=False)
    out = layer(SparseConvTensor(features.requires_grad_(True), coords, [6, 6, 6], 2))
    try:
        out.features.sum().backward()
    except (AssertionError, RuntimeError) as error:
        assert "CUDA" in str(error)
    else:
        pytest.skip("spconv's CPU backward works now")
    # The shim's twin trains.
    shim_layer = {spconv.SubMConv3d: SubMConv3d, spconv.SparseConv3d: SparseConv3d}[layer_type](4, 8, 3, bias=False)
    features.grad = None
    shim_layer(SparseConvTensor(features, coords, [6, 6, 6], 2)).features.sum().backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda module: module.SubMConv3d(5, 7, 3, padding=1, bias=True, indice_key="a"),
        lambda module: module.SparseConv3d(5, 7, 3, stride=2, padding=1, bias=False),
        lambda module: module.SparseConv3d(5, 7, (3, 1, 1), stride=(2, 1, 1), bias=True),
        lambda module: module.SubMConv3d(5, 7, 1, bias=True),
        lambda module: module.SparseConv3d(5, 7, 1, bias=False),
    ],
)
def test_state_dict_and_forward_match_spconv(make):
    import pointkd.detection.sparse as shim

    raw = randomize(make(spconv))
    ours = make(shim)
    assert list(ours.state_dict()) == list(raw.state_dict())
    assert ours.weight.shape == raw.weight.shape == (7, *raw.kernel_size, 5)
    ours.load_state_dict(raw.state_dict())
    features, coords = random_sparse(400, 5, SPATIAL_SHAPE, dtype=torch.float32)
    with torch.no_grad(), torch_num_threads(1):
        expected = raw(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))
        got = ours(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))
    assert torch.equal(got.indices, expected.indices)
    assert list(got.spatial_shape) == list(expected.spatial_shape)
    torch.testing.assert_close(got.features, expected.features, rtol=1e-5, atol=1e-5)


def test_indice_key_shares_the_rulebook():
    features, coords = random_sparse(200, 4, SPATIAL_SHAPE, dtype=torch.float32)
    first = SubMConv3d(4, 4, 3, bias=False, indice_key="shared")
    second = SubMConv3d(4, 4, 3, bias=False, indice_key="shared")
    hidden = first(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))
    rulebook = hidden.indice_dict["shared"]
    out = second(hidden)
    assert out.indice_dict["shared"] is rulebook
    fresh = copy.deepcopy(second)
    fresh.indice_key = None
    torch.testing.assert_close(out.features, fresh(hidden.replace_feature(hidden.features)).features)
    # Only submanifold layers may reuse a key.
    with pytest.raises(ValueError, match="only SubMConv3d"):
        SparseConv3d(4, 4, 3, stride=2, indice_key="shared")(hidden)


def test_bad_input():
    features, coords = random_sparse(20, 4, SPATIAL_SHAPE, dtype=torch.float32)
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        SubMConv3d(4, 8, 2)
    with pytest.raises(ValueError, match=r"input.features must be \(N, 3\)"):
        SubMConv3d(3, 8, 3)(SparseConvTensor(features, coords, SPATIAL_SHAPE, 2))
    with pytest.raises(TypeError, match="input must be a spconv SparseConvTensor"):
        SparseConv3d(4, 8, 3)(features)
    with pytest.raises(TypeError, match="input must be a spconv SparseConvTensor"):
        sparse_to_dense(features)


def test_empty_input():
    features = torch.zeros(0, 4)
    coords = torch.zeros(0, 4, dtype=torch.int32)
    for layer in (SubMConv3d(4, 8, 3), SparseConv3d(4, 8, 3, stride=2, padding=1)):
        out = layer(SparseConvTensor(features, coords, SPATIAL_SHAPE, 1))
        assert out.features.shape == (0, 8)


# spconv's own dense() indexes with a list, which torch now warns about.
@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")
@pytest.mark.parametrize("channels_first", [True, False])
def test_sparse_to_dense_matches_spconv(channels_first):
    features, coords = random_sparse(100, 3, SPATIAL_SHAPE)
    tensor = SparseConvTensor(features.requires_grad_(True), coords, SPATIAL_SHAPE, 2)
    dense = sparse_to_dense(tensor, channels_first=channels_first)
    torch.testing.assert_close(dense, tensor.dense(channels_first=channels_first), rtol=0, atol=0)
    dense.sum().backward()
    torch.testing.assert_close(features.grad, torch.ones_like(features))


def test_torch_num_threads_restores():
    before = torch.get_num_threads()
    with torch_num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_num_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == before
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_threads"), torch_num_threads(bad):
            pass


@requires_cuda
@pytest.mark.parametrize("name", ["subm3", "conv3_s2_p1", "conv311_s211"])
def test_cuda_runs_spconv_and_matches_cpu(name):
    layer = randomize(LAYERS[name]())
    features, coords = random_sparse(300, 5, SPATIAL_SHAPE, dtype=torch.float32)
    cpu_features = features.clone().requires_grad_(True)
    cpu = layer(SparseConvTensor(cpu_features, coords, SPATIAL_SHAPE, 2))
    cuda_layer = copy.deepcopy(layer).cuda()
    cuda_features = features.cuda().requires_grad_(True)
    cuda = cuda_layer(SparseConvTensor(cuda_features, coords.cuda(), SPATIAL_SHAPE, 2))
    assert cuda.features.is_cuda and list(cuda.spatial_shape) == list(cpu.spatial_shape)
    # Same sites, possibly in another order: compare on the dense grid.
    dense_cpu = sparse_to_dense(cpu)
    dense_cuda = sparse_to_dense(cuda).cpu()
    scale = float(dense_cpu.abs().max())
    torch.testing.assert_close(dense_cuda, dense_cpu.detach(), rtol=1e-3, atol=1e-3 * scale)
    upstream = torch.randn(dense_cpu.shape)
    (dense_cpu * upstream).sum().backward()
    (sparse_to_dense(cuda) * upstream.cuda()).sum().backward()
    grad_scale = float(cpu_features.grad.abs().max())
    torch.testing.assert_close(cuda_features.grad.cpu(), cpu_features.grad, rtol=1e-3, atol=1e-3 * grad_scale)
