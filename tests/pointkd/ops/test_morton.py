import pytest
import torch

from pointkd.ops import morton_encode
from pointkd.ops.morton import _morton_encode_reference
from tests.conftest import DEVICES, requires_cuda


def _interleave(x: int, y: int, z: int) -> int:
    """Bit interleaving written from the definition, one integer at a time."""
    code = 0
    for bit in range(21):
        code |= ((x >> bit) & 1) << (3 * bit) | ((y >> bit) & 1) << (3 * bit + 1) | ((z >> bit) & 1) << (3 * bit + 2)
    return code


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_matches_definition(device, dtype):
    generator = torch.Generator().manual_seed(0)
    coords = torch.randint(0, 2**21, (500, 3), generator=generator, dtype=torch.int64)
    coords[:3] = torch.tensor([[0, 0, 0], [2**21 - 1] * 3, [1, 2, 4]])
    codes = morton_encode(coords.to(device=device, dtype=dtype)).cpu()
    expected = torch.tensor([_interleave(*map(int, row)) for row in coords])
    assert codes.dtype == torch.int64
    assert torch.equal(codes, expected)
    assert torch.equal(_morton_encode_reference(coords), expected)
    assert codes[1] == 2**63 - 1 and codes[2] == 1 + 16 + 256


def test_order_is_z_order():
    grid = torch.stack(torch.meshgrid(*[torch.arange(2)] * 3, indexing="ij"), dim=-1).reshape(-1, 3)
    order = torch.argsort(morton_encode(grid))
    # x fastest, then y, then z in the 2x2x2 cube.
    assert grid[order].tolist() == [[x, y, z] for z in range(2) for y in range(2) for x in range(2)]


def test_unique_keys_and_large_parallel():
    coords = torch.unique(torch.randint(0, 300, (200_000, 3)), dim=0)
    codes = morton_encode(coords)
    assert codes.unique().numel() == coords.shape[0]
    assert torch.equal(codes, _morton_encode_reference(coords))


def test_empty_and_non_contiguous():
    assert morton_encode(torch.empty(0, 3, dtype=torch.long)).shape == (0,)
    coords = torch.randint(0, 100, (3, 50)).t()
    assert not coords.is_contiguous()
    assert torch.equal(morton_encode(coords), _morton_encode_reference(coords))


@pytest.mark.parametrize(
    "coords, message",
    [
        (torch.zeros(4, 3), r"coords must be an int32 or int64 tensor of shape \[N, 3\]"),
        (torch.zeros(4, 2, dtype=torch.long), r"shape \[N, 3\], got Long \[4, 2\]"),
        (torch.zeros(3, dtype=torch.long), r"shape \[N, 3\]"),
        (torch.tensor([[0, -1, 0]]), r"coords must lie in \[0, 2\^21\)"),
        (torch.tensor([[0, 2**21, 0]]), r"coords must lie in \[0, 2\^21\)"),
    ],
)
def test_bad_input(coords, message):
    with pytest.raises(RuntimeError, match=message):
        morton_encode(coords)


def test_opcheck():
    for dtype in (torch.int32, torch.int64):
        coords = torch.randint(0, 1000, (17, 3), dtype=dtype)
        torch.library.opcheck(torch.ops.pointkd.morton_encode.default, (coords,))


@requires_cuda
def test_cuda_matches_cpu():
    coords = torch.randint(0, 2**21, (100_000, 3))
    assert torch.equal(morton_encode(coords.cuda()).cpu(), morton_encode(coords))
