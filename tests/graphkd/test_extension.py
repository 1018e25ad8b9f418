import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

import graphkd
import pointkd
from geokd.extension import ExtensionLibrary, ExtensionNotBuiltError, format_info
from tests.conftest import REPO_ROOT


def _run_python(code, env_extra=None, cwd=None, pythonpath=str(REPO_ROOT)):
    env = dict(os.environ, PYTHONPATH=pythonpath, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
        check=False,
    )


@pytest.mark.parametrize("package, op", [(graphkd, "index_to_ptr"), (pointkd, "morton_encode")])
def test_info_with_library(package, op):
    info = package.extension_info()
    assert info["loaded"] is True and info["error"] is None
    assert info["ops"][op]["cpu"] is True
    assert info["ops"][op]["cuda"] is (info["build"]["cuda"] is not None)
    assert info["build"]["torch"] == torch.__version__.split("+")[0]
    assert info["runtime"]["torch"] == torch.__version__
    assert "cuda_version" not in info["ops"]
    json.dumps(info)  # serialisable for `info --json`
    assert re.search(rf"\b{op} +yes\b", format_info(info))


def test_info_and_error_without_library():
    # GEOKD_NO_EXTENSION=1 at run time behaves as a pure-Python install.
    result = _run_python(
        """
        import json, torch, graphkd, pointkd
        info = graphkd.extension_info()
        print(json.dumps({"loaded": info["loaded"], "error": info["error"], "ops": info["ops"]}))
        try:
            graphkd.ops.index_to_ptr(torch.tensor([0, 1]), 2)
        except RuntimeError as error:
            print("ERROR", type(error).__name__, error)
        """,
        {"GEOKD_NO_EXTENSION": "1"},
    )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.splitlines()[0])
    assert info == {"loaded": False, "error": "loading disabled by GEOKD_NO_EXTENSION", "ops": {}}
    assert "ERROR ExtensionNotBuiltError torch.ops.graphkd.index_to_ptr needs the compiled library graphkd._C" in result.stdout
    assert "pip install --no-build-isolation -e ." in result.stdout


def test_broken_library_reports_load_error(tmp_path, monkeypatch):
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    suffix = next(s for s in __import__("importlib.machinery").machinery.EXTENSION_SUFFIXES if s.endswith(".so"))
    (package / f"_C{suffix}").write_bytes(b"this is not a shared object")
    monkeypatch.syspath_prepend(str(tmp_path))
    library = ExtensionLibrary("brokenpkg")
    info = library.info()
    assert info["loaded"] is False and info["path"].endswith(suffix)
    assert info["error"].startswith("OSError") and "brokenpkg" in info["error"]
    with pytest.raises(ExtensionNotBuiltError, match="Rebuild it from the source checkout"):
        library.op("anything")
    assert "NOT LOADED" in format_info(info)


def test_missing_library():
    library = ExtensionLibrary("json")  # a package without a _C module
    assert library.load() is False
    assert "json._C is not installed" in library.error
    assert library.op_names() == []


def test_pure_python_install(tmp_path):
    """GEOKD_NO_EXTENSION=1 installs no library; the package imports and explains how to rebuild."""
    if shutil.which("git") is None:
        pytest.skip("needs git to copy the source tree")
    source = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "--target", str(target), str(source)],
        env=dict(os.environ, GEOKD_NO_EXTENSION="1"), capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert not list(target.rglob("_C*.so"))
    result = _run_python(
        """
        import os, torch, graphkd, pointkd
        assert graphkd.__file__.startswith(os.environ["INSTALL_TARGET"]), graphkd.__file__
        print(graphkd.extension_info()["error"])
        from graphkd.datasets import embedded_datasets, Planetoid
        print("embedded:", embedded_datasets(), Planetoid("cora")[0].num_nodes)
        try:
            pointkd.ops.morton_encode(torch.zeros(1, 3, dtype=torch.long))
        except RuntimeError as error:
            print(error)
        """,
        env_extra={"INSTALL_TARGET": str(target)}, cwd=tmp_path, pythonpath=str(target),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "graphkd._C is not installed" in result.stdout
    assert "embedded: ['Cora', 'MUTAG'] 2708" in result.stdout  # package data installed too
    assert "pointkd.morton_encode needs the compiled library pointkd._C" in result.stdout
    assert "Rebuild it from the source checkout" in result.stdout
