import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphkd.ops import index_to_ptr
from graphkd.ops.index_to_ptr import _index_to_ptr_reference
from tests.conftest import DEVICES, requires_cuda


@pytest.mark.parametrize("device", DEVICES)
def test_matches_reference_and_pyg(device):
    from torch_geometric.utils.sparse import index2ptr

    index = torch.tensor([0, 0, 2, 2, 2, 5], device=device)
    expected = torch.tensor([0, 2, 2, 5, 5, 5, 6, 6], device=device)
    assert torch.equal(index_to_ptr(index, 7), expected)
    assert torch.equal(_index_to_ptr_reference(index, 7), expected)
    assert torch.equal(index2ptr(index, 7), expected)


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 5), min_size=0, max_size=40))
def test_random_counts(counts):
    size = len(counts)
    index = torch.repeat_interleave(torch.arange(size), torch.tensor(counts, dtype=torch.long))
    ptr = index_to_ptr(index, size)
    assert torch.equal(ptr, _index_to_ptr_reference(index, size))
    assert torch.equal(ptr.diff(), torch.tensor(counts, dtype=torch.long))


def test_large_parallel():
    index = torch.sort(torch.randint(0, 10_000, (1_000_000,)))[0]
    assert torch.equal(index_to_ptr(index, 12_000), _index_to_ptr_reference(index, 12_000))


def test_empty_and_default_size():
    assert torch.equal(index_to_ptr(torch.empty(0, dtype=torch.long), 3), torch.zeros(4, dtype=torch.long))
    assert torch.equal(index_to_ptr(torch.empty(0, dtype=torch.long)), torch.zeros(1, dtype=torch.long))
    assert torch.equal(index_to_ptr(torch.tensor([0, 1, 1])), torch.tensor([0, 1, 3]))


def test_non_contiguous():
    index = torch.tensor([[0, 9], [1, 9], [1, 9], [3, 9]])[:, 0]
    assert not index.is_contiguous()
    assert torch.equal(index_to_ptr(index, 4), torch.tensor([0, 1, 3, 3, 4]))


@pytest.mark.parametrize(
    "index, size, message",
    [
        (torch.tensor([0.0, 1.0]), 2, "index must be a 1-D int64 tensor"),
        (torch.tensor([[0, 1]]), 2, "index must be a 1-D int64 tensor"),
        (torch.tensor([0, 1], dtype=torch.int32), 2, "got Int"),
        (torch.tensor([0, 2]), 2, r"index must hold values in \[0, size\)"),
        (torch.tensor([-1, 0]), 2, r"index must hold values in \[0, size\)"),
        (torch.tensor([1, 0]), 2, "must be sorted"),
        (torch.tensor([0]), -1, "size must be >= 0"),
    ],
)
def test_bad_input(index, size, message):
    with pytest.raises(RuntimeError, match=message):
        index_to_ptr(index, size)


def test_bad_values_deep_inside_large_input():
    index = torch.sort(torch.randint(0, 1000, (500_000,)))[0]
    unsorted = index.clone()
    unsorted[300_000], unsorted[300_001] = 999, 0
    with pytest.raises(RuntimeError, match="must be sorted"):
        index_to_ptr(unsorted, 1000)
    out_of_range = index.clone()
    out_of_range[-1] = 5000
    with pytest.raises(RuntimeError, match=r"got values in \[0, 5000\]"):
        index_to_ptr(out_of_range, 1000)


def test_not_a_tensor():
    with pytest.raises(TypeError, match="index must be a Tensor"):
        index_to_ptr([0, 1], 2)


def test_opcheck():
    index = torch.tensor([0, 0, 1, 3, 3])
    torch.library.opcheck(torch.ops.graphkd.index_to_ptr.default, (index, 5))
    torch.library.opcheck(torch.ops.graphkd.index_to_ptr.default, (torch.empty(0, dtype=torch.long), 2))


def test_compiles_without_graph_break():
    def fn(index):
        return index_to_ptr(index, 6) + 1

    index = torch.tensor([0, 2, 2, 5])
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    assert torch.equal(compiled(index), fn(index))


@requires_cuda
def test_cuda_matches_cpu():
    index = torch.sort(torch.randint(0, 5000, (100_000,)))[0]
    assert torch.equal(index_to_ptr(index.cuda(), 6000).cpu(), index_to_ptr(index, 6000))
