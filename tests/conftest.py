"""Test-wide settings: offline data, an isolated cache, the devices to run on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Tests never download: raw files come from GEOKD_DATA (../shared/data beside the
# checkout, when present) or from the copies embedded in the package.
os.environ["GEOKD_OFFLINE"] = "1"
os.environ.setdefault("GEOKD_PROGRESS", "0")
if "GEOKD_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GEOKD_DATA"] = str(SHARED_DATA)

DEVICES = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Processed datasets go to a fresh cache, never to the user's."""
    previous = os.environ.get("GEOKD_CACHE")
    os.environ["GEOKD_CACHE"] = str(tmp_path_factory.mktemp("geokd-cache"))
    yield
    if previous is None:
        os.environ.pop("GEOKD_CACHE", None)
    else:
        os.environ["GEOKD_CACHE"] = previous


@pytest.fixture
def shared_data() -> Path:
    """The offline dataset folder (GEOKD_DATA); tests needing it skip without it."""
    root = os.environ.get("GEOKD_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("needs the offline datasets: set GEOKD_DATA (e.g. ../shared/data)")
    return Path(root)


def requires_cuda(test):
    return pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test)
