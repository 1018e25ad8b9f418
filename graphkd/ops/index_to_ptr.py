"""CSR row pointers of a sorted index: ``torch.ops.graphkd.index_to_ptr``."""

from __future__ import annotations

import torch
from torch import Tensor

from graphkd._ext import library


def index_to_ptr(index: Tensor, size: int | None = None) -> Tensor:
    r"""Compressed row pointers of a sorted index vector.

    For a sorted ``index`` (e.g. the target row of edges sorted by target, or
    the ``batch`` vector of a PyG mini-batch) returns ``ptr`` with

    .. math::
        \mathrm{ptr}_r = \left|\{\, i : \mathrm{index}_i < r \,\}\right|,
        \qquad r = 0, \dots, \mathrm{size},

    so that ``index[ptr[r]:ptr[r + 1]]`` holds exactly the entries equal to ``r``.

    Args:
        index (Tensor): sorted ascending int64 values in ``[0, size)``.
        size (int, optional): number of rows; ``index.max() + 1`` if ``None``
            (0 for an empty index). (default: ``None``)

    Shapes:
        - index: :math:`(E,)`
        - output: :math:`(\mathrm{size} + 1,)`, int64, on ``index``'s device.

    Raises:
        RuntimeError: ``index`` not 1-D int64, unsorted, or out of ``[0, size)``.
    """
    if not isinstance(index, Tensor):
        raise TypeError(f"index must be a Tensor, got {type(index).__name__}")
    if size is None:
        size = int(index.max()) + 1 if index.numel() > 0 else 0
    return library.op("index_to_ptr")(index, int(size))


def _index_to_ptr_reference(index: Tensor, size: int) -> Tensor:
    """Pure-torch ground truth: the first position of each row in the sorted index."""
    rows = torch.arange(size + 1, device=index.device, dtype=index.dtype)
    return torch.searchsorted(index.contiguous(), rows, right=False)


if library.load():

    @torch.library.register_fake("graphkd::index_to_ptr")
    def _(index: Tensor, size: int) -> Tensor:
        torch._check(index.dim() == 1, lambda: f"index must be 1-D, got {index.dim()}-D")
        return index.new_empty((size + 1,))
