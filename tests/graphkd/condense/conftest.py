import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny tensors: on a shared machine, a second thread spends
    more time waiting for a core than it saves (measured 5-10x slower in CPU time under load).
    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
