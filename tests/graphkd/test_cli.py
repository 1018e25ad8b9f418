import json
import os
import shutil
import subprocess
import sys

import pytest

from graphkd.cli import main
from tests.conftest import REPO_ROOT


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("info", "demo", "GEOKD_DATA", "GEOKD_OFFLINE", "torchrun"):
        assert word in text


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: graphkd" in capsys.readouterr().err


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["loaded"] is True and info["ops"]["index_to_ptr"]["cpu"] is True


def test_info_table(capsys):
    assert main(["info"]) == 0
    assert "index_to_ptr  yes" in capsys.readouterr().out


def test_console_script_without_library():
    script = shutil.which("graphkd", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the graphkd console script is not installed next to this Python")
    env = dict(os.environ, GEOKD_NO_EXTENSION="1", PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([script, "info", "--json"], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1  # the library is not loaded
    assert json.loads(result.stdout)["loaded"] is False


@pytest.mark.parametrize("package", ["graphkd", "pointkd"])
def test_python_dash_m_runs_the_command(package):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-m", package, "info", "--json"], check=False, env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loaded"] is True


def test_demo_trains_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--epochs", "30", "--out", str(out), "--json"]) == 0
    first = json.loads((out / "result.json").read_text())
    # The SAGE teacher clears 70% within 30 epochs; a broken pipeline stays near 1/7. The MLP
    # distilled from it beats the MLP trained on labels alone by a wide margin (GLNN: 80.5 vs 59.6).
    assert first["test_acc"] > 0.7
    assert first["mlp_test_acc"] < 0.68
    assert first["glnn_test_acc"] > first["mlp_test_acc"] + 0.1
    assert first["latency_ms"]["speedup"] > 1
    assert first["mutag"] == {"graphs": 188, "nodes": 3371, "mean_nodes_per_graph": 17.93, "classes": 2}
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file() and (out / "log.txt").is_file()
    capsys.readouterr()
    assert main(["demo", "--epochs", "40", "--out", str(out)]) == 0
    assert "resumed from" in (out / "log.txt").read_text()
    assert json.loads((out / "result.json").read_text())["epochs"] == 40


def test_demo_refuses_a_foreign_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["demo", "--epochs", "2", "--out", str(out), "--hidden", "16"]) == 0
    capsys.readouterr()
    assert main(["demo", "--epochs", "3", "--out", str(out)]) == 2
    assert "holds a checkpoint of another model (sage-16, not sage-128)" in capsys.readouterr().err


def test_demo_rejects_bad_arguments(capsys):
    assert main(["demo", "--epochs", "0"]) == 2
    assert "graphkd: error: epochs and hidden must be >= 1" in capsys.readouterr().err
