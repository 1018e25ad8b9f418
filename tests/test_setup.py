"""The build decisions setup.py prints (no compilation: `setup.py --version` only plans the build)."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO_ROOT


def _plan(**env):
    environment = {k: v for k, v in os.environ.items() if k not in ("FORCE_CUDA", "FORCE_ONLY_CPU", "GEOKD_NO_EXTENSION")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "setup.py", "--version"], cwd=REPO_ROOT, env=environment, capture_output=True, text=True,
        timeout=300, check=False,
    )


def test_no_extension():
    result = _plan(GEOKD_NO_EXTENSION="1")
    assert result.returncode == 0, result.stderr
    assert "building no compiled library (pure-Python install)" in result.stderr


def test_only_cpu():
    result = _plan(FORCE_ONLY_CPU="1")
    assert result.returncode == 0, result.stderr
    assert "CUDA kernels: no (FORCE_ONLY_CPU=1)" in result.stderr
    assert "graphkd._C:" in result.stderr and "pointkd._C:" in result.stderr


@pytest.mark.skipif(torch.version.cuda is not None, reason="needs a CPU build of torch")
def test_default_with_cpu_torch_and_forced_cuda():
    result = _plan()
    assert result.returncode == 0, result.stderr
    assert "CUDA kernels: no (torch" in result.stderr and "is a CPU build)" in result.stderr
    forced = _plan(FORCE_CUDA="1")
    assert forced.returncode != 0
    assert "FORCE_CUDA=1 but torch" in forced.stderr and "is a CPU build" in forced.stderr
