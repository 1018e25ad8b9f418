import pytest
import torch

from pointkd.nerf import HashGridEncoding
from pointkd.ops import HashGridConfig, hash_grid_encode
from pointkd.ops.hash_grid import _hash_grid_encode_reference
from tests.conftest import requires_cuda

# Resolutions 4, 6, 11, 19, 32: (N + 1)^3 = 125, 343 fit a table of 2^9 rows, the others are hashed.
SMALL = HashGridConfig(num_levels=5, features_per_level=2, log2_table_size=9, base_resolution=4, finest_resolution=32)
# Resolutions 2, 4, 8: dense, dense, hashed into 2^8 rows. Small enough for gradcheck.
TINY = HashGridConfig(num_levels=3, features_per_level=2, log2_table_size=8, base_resolution=2, finest_resolution=8)
# Three features: not one of the counts the CPU kernel unrolls (1, 2, 4, 8).
WIDE = HashGridConfig(num_levels=3, features_per_level=3, log2_table_size=10, base_resolution=5, finest_resolution=40)


def _points(num_points, generator, config, dtype=torch.float64):
    """Random points, some outside [0, 1]^3, plus 0, 1 and vertices and cell faces of every level."""
    points = torch.rand(num_points, 3, generator=generator, dtype=torch.float64) * 1.2 - 0.1
    special = [[0, 0, 0], [1, 1, 1], [0, 1, 0.5], [1, 0, 0.25], [-0.5, 2.0, 1.0]]
    for resolution in config.resolutions:
        vertices = torch.randint(0, resolution + 1, (4, 3), generator=generator) / resolution
        special += vertices.tolist()
        special.append([1 / resolution, 0.3, (resolution - 1) / resolution])  # one vertex axis, one face
    special = torch.tensor(special, dtype=torch.float64)
    points[: special.shape[0]] = special
    return points.to(dtype)


def _embeddings(config, generator, dtype=torch.float64):
    return torch.randn(config.num_embeddings, config.features_per_level, generator=generator, dtype=dtype)


def test_config():
    config = HashGridConfig()
    assert config.resolutions == (16, 22, 30, 42, 58, 80, 111, 153, 212, 294, 406, 561, 776, 1072, 1482, 2048)
    assert config.level_sizes[:5] == (17**3, 23**3, 31**3, 43**3, 59**3)  # dense while (N + 1)^3 <= 2^19
    assert set(config.level_sizes[5:]) == {2**19}
    assert config.level_offsets[1] == 17**3 and config.num_embeddings == sum(config.level_sizes)
    assert config.output_dim == 32 and config.per_level_scale == pytest.approx(1.38191288)
    assert HashGridConfig(num_levels=1, base_resolution=5).resolutions == (5,)
    assert SMALL.resolutions == (4, 6, 11, 19, 32) and SMALL.level_sizes == (125, 343, 512, 512, 512)
    assert TINY.resolutions == (2, 4, 8) and TINY.level_sizes == (27, 125, 256)
    with pytest.raises(ValueError, match=r"finest_resolution must be in \[base_resolution, 16777216\]"):
        HashGridConfig(base_resolution=32, finest_resolution=16)
    with pytest.raises(ValueError, match=r"log2_table_size must be in \[1, 32\], got 40"):
        HashGridConfig(log2_table_size=40)
    with pytest.raises(TypeError, match="num_levels must be an int, got float"):
        HashGridConfig(num_levels=16.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", [SMALL, TINY, HashGridConfig(num_levels=4, log2_table_size=14), WIDE], ids=str)
def test_matches_reference(dtype, config):
    generator = torch.Generator().manual_seed(0)
    points = _points(500, generator, config, dtype)
    embeddings = _embeddings(config, generator, dtype)
    out = hash_grid_encode(points, embeddings, config)
    assert out.shape == (500, config.output_dim) and out.dtype == dtype and out.is_contiguous()
    tolerance = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(out, _hash_grid_encode_reference(points, embeddings, config), **tolerance)
    # Outside [0, 1]^3 is clamped onto it.
    torch.testing.assert_close(out, hash_grid_encode(points.clamp(0, 1), embeddings, config), rtol=0, atol=0)


def _hash(vertex, table_size):
    """The spatial hash of Müller et al. (2022), Eq. 4, in uint32 arithmetic."""
    x, y, z = vertex
    return ((x * 1) ^ (y * 2654435761) ^ (z * 805459861)) % 2**32 % table_size


def test_corner_rows_by_hand():
    """At a vertex, a level reads exactly one row: embeddings whose value is the row number return it."""
    # Level 0: N = 3, 4^3 = 64 <= 2^19, dense. Level 1: N = 128, 129^3 > 2^19, hashed.
    config = HashGridConfig(
        num_levels=2, features_per_level=1, log2_table_size=19, base_resolution=3, finest_resolution=128
    )
    assert config.resolutions == (3, 128) and config.level_sizes == (64, 2**19)
    embeddings = torch.arange(config.num_embeddings, dtype=torch.float64).unsqueeze(1)
    vertices = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (5, 7, 9), (127, 3, 64), (128, 128, 128), (128, 0, 5)]
    points = torch.tensor(vertices, dtype=torch.float64) / 128
    out = hash_grid_encode(points, embeddings, config)
    # Hashed level, worked out by hand for a few vertices:
    #   (1, 0, 0): 1 ^ 0 ^ 0 = 1
    #   (0, 1, 0): 2654435761 mod 2^19 = 2654435761 - 5062 * 2^19 = 489905
    #   (5, 7, 9): 7 * 2654435761 = 18581050327 = 0x4_5384_53D7, 9 * 805459861 = 7249138749 = 0x1_B015_143D;
    #              low 32 bits 0x538453D7 ^ 0xB015143D ^ 5 = 0xE39147EF, mod 2^19 = 0x147EF = 83951
    assert out[1, 1].item() == 64 + 1
    assert out[2, 1].item() == 64 + 489905
    assert out[3, 1].item() == 64 + 83951
    for row, vertex in enumerate(vertices):
        assert out[row, 1].item() == 64 + _hash(vertex, 2**19), vertex
    # Dense level: the vertex (v * 3 / 128) is not a vertex of N = 3 in general, so use its own vertices.
    dense_vertices = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (3, 3, 3), (2, 1, 3)]
    out = hash_grid_encode(torch.tensor(dense_vertices, dtype=torch.float64) / 3, embeddings, config)
    for row, (x, y, z) in enumerate(dense_vertices):
        assert out[row, 0].item() == pytest.approx(x + 4 * y + 16 * z, abs=1e-12), (x, y, z)


@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("config", [SMALL, TINY, WIDE], ids=str)
def test_gradients_match_reference(needs, config):
    generator = torch.Generator().manual_seed(1)
    points = _points(400, generator, config)
    embeddings = _embeddings(config, generator)
    grad_output = torch.randn(400, config.output_dim, generator=generator, dtype=torch.float64)
    grads = []
    for fn in (hash_grid_encode, _hash_grid_encode_reference):
        inputs = [points.clone().requires_grad_(needs[0]), embeddings.clone().requires_grad_(needs[1])]
        wanted = [tensor for tensor in inputs if tensor.requires_grad]
        grads.append(torch.autograd.grad(fn(*inputs, config), wanted, grad_output))
    for ours, reference in zip(*grads):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)
    if needs[0]:
        outside = ((points < 0) | (points > 1)) & ~torch.isnan(points)
        assert torch.all(grads[0][0][outside] == 0)


def test_gradcheck():
    generator = torch.Generator().manual_seed(2)
    # Inside and outside [0, 1]^3, away from the cell faces (kinks of the interpolant).
    points = (torch.rand(8, 3, generator=generator, dtype=torch.float64) * 1.2 - 0.1).requires_grad_()
    embeddings = _embeddings(TINY, generator).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, e: hash_grid_encode(p, e, TINY), (points, embeddings))


def test_opcheck():
    generator = torch.Generator().manual_seed(3)
    points = _points(40, generator, SMALL)
    embeddings = _embeddings(SMALL, generator)
    arguments = (list(SMALL.resolutions), SMALL.log2_table_size)
    torch.library.opcheck(torch.ops.pointkd.hash_grid_encode.default, (points, embeddings, *arguments))
    grad_output = torch.randn(40, SMALL.output_dim, generator=generator, dtype=torch.float64)
    for output_mask in ([True, True], [True, False], [False, True]):
        torch.library.opcheck(
            torch.ops.pointkd.hash_grid_encode_backward.default,
            (grad_output, points, embeddings, *arguments, output_mask),
        )


def test_batch_shape_and_non_contiguous():
    generator = torch.Generator().manual_seed(4)
    points = torch.rand(3, 50, 3, generator=generator)
    embeddings = _embeddings(SMALL, generator, torch.float32)
    out = hash_grid_encode(points, embeddings, SMALL)
    assert out.shape == (3, 50, SMALL.output_dim)
    torch.testing.assert_close(out, hash_grid_encode(points.reshape(150, 3), embeddings, SMALL).view(3, 50, -1))
    strided_points = points.reshape(150, 3).t().contiguous().t()  # strides (1, 150)
    strided_embeddings = embeddings.t().contiguous().t()
    assert not strided_points.is_contiguous() and not strided_embeddings.is_contiguous()
    torch.testing.assert_close(
        hash_grid_encode(strided_points, strided_embeddings, SMALL), out.view(150, -1), rtol=0, atol=0
    )


def test_cpu_gradient_reproducible_across_threads():
    """Threads split the levels: each table row sums its points in the same order with 1 or 2 threads."""
    generator = torch.Generator().manual_seed(5)
    config = HashGridConfig(num_levels=6, log2_table_size=12, base_resolution=4, finest_resolution=64)
    points = torch.rand(20_000, 3, generator=generator).requires_grad_()
    embeddings = _embeddings(config, generator, torch.float32).requires_grad_()
    grad_output = torch.randn(20_000, config.output_dim, generator=generator)
    threads = torch.get_num_threads()
    results = []
    try:
        for num_threads in (1, 2):
            torch.set_num_threads(num_threads)
            out = hash_grid_encode(points, embeddings, config)
            results.append([out, *torch.autograd.grad(out, (points, embeddings), grad_output)])
    finally:
        torch.set_num_threads(threads)
    for serial, parallel in zip(*results):
        assert torch.equal(serial, parallel)
    reference = _hash_grid_encode_reference(points, embeddings, config)
    expected = torch.autograd.grad(reference, (points, embeddings), grad_output)
    torch.testing.assert_close(results[0][2], expected[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(results[0][1], expected[0], rtol=1e-4, atol=1e-3)


def test_empty():
    embeddings = torch.randn(SMALL.num_embeddings, 2, requires_grad=True)
    points = torch.empty(0, 3, requires_grad=True)
    out = hash_grid_encode(points, embeddings, SMALL)
    assert out.shape == (0, SMALL.output_dim)
    grad_points, grad_embeddings = torch.autograd.grad(out.sum(), (points, embeddings))
    assert grad_points.shape == (0, 3) and torch.equal(grad_embeddings, torch.zeros_like(embeddings))
    assert hash_grid_encode(torch.empty(2, 0, 3), embeddings.detach(), SMALL).shape == (2, 0, SMALL.output_dim)


E = SMALL.num_embeddings


@pytest.mark.parametrize(
    "points, embeddings, error, message",
    [
        (
            torch.zeros(5, 2),
            torch.zeros(E, 2),
            RuntimeError,
            r"points must be a float32 or float64 tensor of shape \[N, 3\], got Float \[5, 2\]",
        ),
        (
            torch.zeros(5, 3, dtype=torch.long),
            torch.zeros(E, 2),
            RuntimeError,
            r"points must be a float32 or float64.*got Long \[5, 3\]",
        ),
        (
            torch.zeros(5, 3),
            torch.zeros(E, 2, dtype=torch.float64),
            RuntimeError,
            r"embeddings must have the dtype of points \(Float\), got Double",
        ),
        (
            torch.zeros(5, 3),
            torch.zeros(E - 1, 2),
            RuntimeError,
            (
                rf"embeddings must have one row per table entry of the 5 levels \(E = {E} for these resolutions "
                rf"and log2_table_size = 9\), got Float \[{E - 1}, 2\]"
            ),
        ),
        (
            torch.zeros(5, 3),
            torch.zeros(E),
            RuntimeError,
            rf"embeddings must be of shape \[E, F\] with F >= 1, got Float \[{E}\]",
        ),
        (
            torch.zeros(5, 3),
            torch.zeros(E, 3),
            ValueError,
            rf"embeddings must have config.features_per_level = 2 columns, got shape \[{E}, 3\]",
        ),
        (
            torch.tensor([[0.5, 0.5, 0.5], [0.1, float("nan"), 0.2]]),
            torch.zeros(E, 2),
            RuntimeError,
            r"points must be finite.*points\[1\] = \(0.1, nan, 0.2\)",
        ),
        (
            torch.tensor([[0.5, 0.5, float("-inf")]]),
            torch.zeros(E, 2),
            RuntimeError,
            r"points must be finite.*points\[0\]",
        ),
        ([[0.0, 0.0, 0.0]], torch.zeros(E, 2), TypeError, "points must be a Tensor, got list"),
    ],
)
def test_bad_input(points, embeddings, error, message):
    with pytest.raises(error, match=message):
        hash_grid_encode(points, embeddings, SMALL)


def test_bad_op_arguments():
    points, embeddings = torch.rand(5, 3), torch.zeros(E, 2)
    with pytest.raises(TypeError, match="config must be a HashGridConfig, got dict"):
        hash_grid_encode(points, embeddings, {"num_levels": 5})
    op = torch.ops.pointkd.hash_grid_encode
    with pytest.raises(RuntimeError, match=r"resolutions\[1\] must be in \[1, 16777216\], got 0"):
        op(points, embeddings, [4, 0], 9)
    with pytest.raises(RuntimeError, match=r"resolutions must list 1 to 64 levels, got 0"):
        op(points, embeddings, [], 9)
    with pytest.raises(RuntimeError, match=r"log2_table_size must be in \[1, 32\], got 0"):
        op(points, embeddings, list(SMALL.resolutions), 0)
    with pytest.raises(
        RuntimeError,
        match=r"grad_output must have the shape of the output \(\[N, L \* F\] = \[5, 10\]\), got Float \[5, 9\]",
    ):
        torch.ops.pointkd.hash_grid_encode_backward(
            torch.zeros(5, 9), points, embeddings, list(SMALL.resolutions), 9, [True, True]
        )


def test_double_backward_raises():
    points = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    embeddings = _embeddings(TINY, torch.Generator().manual_seed(6)).requires_grad_()
    (grad_points,) = torch.autograd.grad(hash_grid_encode(points, embeddings, TINY).sum(), points, create_graph=True)
    with pytest.raises(RuntimeError, match="hash_grid_encode has no double backward"):
        grad_points.norm().backward()


def test_module_fits_a_function():
    """A hash grid with a linear head learns a smooth 3-D field: Adam cuts the MSE at least 10x."""
    torch.manual_seed(0)
    config = HashGridConfig(
        num_levels=6, features_per_level=2, log2_table_size=12, base_resolution=2, finest_resolution=24
    )
    encoding = HashGridEncoding(config)
    assert encoding.embeddings.shape == (config.num_embeddings, 2)
    assert encoding.embeddings.abs().max() <= 1e-4
    head = torch.nn.Linear(encoding.output_dim, 1)
    points = torch.rand(2048, 3)
    target = (torch.sin(6 * points[:, 0]) * torch.cos(4 * points[:, 1]) + points[:, 2] ** 2).unsqueeze(1)
    parameters = [*encoding.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    losses = []
    # One thread: on tensors this small, waking a second one (in the Linear's and Adam's kernels) costs
    # milliseconds per step on a busy machine, and the test is about convergence, not threading.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(300):
            loss = torch.nn.functional.mse_loss(head(encoding(points)), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    # ... and generalises to unseen points of the same field.
    test_points = torch.rand(1024, 3)
    test_target = (
        torch.sin(6 * test_points[:, 0]) * torch.cos(4 * test_points[:, 1]) + test_points[:, 2] ** 2
    ).unsqueeze(1)
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(head(encoding(test_points)), test_target) < losses[0] / 10


@requires_cuda
def test_cuda_matches_cpu():
    generator = torch.Generator().manual_seed(7)
    config = HashGridConfig(num_levels=8, log2_table_size=14, base_resolution=8, finest_resolution=512)
    points = _points(5000, generator, config)
    embeddings = _embeddings(config, generator)
    grad_output = torch.randn(5000, config.output_dim, generator=generator, dtype=torch.float64)
    results = []
    for device in ("cpu", "cuda"):
        inputs = [points.to(device).requires_grad_(), embeddings.to(device).requires_grad_()]
        out = hash_grid_encode(*inputs, config)
        results.append([out, *torch.autograd.grad(out, inputs, grad_output.to(device))])
    for cpu, cuda in zip(*results):
        torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-10, atol=1e-10)
    with pytest.raises(RuntimeError, match=r"embeddings must be on the device of points \(cuda:0\)"):
        hash_grid_encode(points.cuda(), embeddings, config)
    with pytest.raises(RuntimeError, match=r"points must be finite"):
        hash_grid_encode(torch.full((3, 3), float("nan"), device="cuda"), embeddings.float().cuda(), config)
