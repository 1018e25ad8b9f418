import os
import stat
from pathlib import Path

import pytest

from geokd import paths


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("GEOKD_DATA", "GEOKD_CACHE", "GEOKD_OFFLINE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_defaults_to_home_cache(clean_env, tmp_path):
    assert paths.cache_root() == tmp_path / "home" / ".cache" / "geokd"
    assert paths.data_root() == paths.cache_root()
    assert not paths.offline()


def test_environment_overrides(clean_env, tmp_path):
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_root() == tmp_path / "xdg" / "geokd"
    clean_env.setenv("GEOKD_CACHE", str(tmp_path / "cache"))
    clean_env.setenv("GEOKD_DATA", str(tmp_path / "data"))
    assert paths.cache_root() == tmp_path / "cache"
    assert paths.data_root() == tmp_path / "data"
    clean_env.setenv("GEOKD_DATA", "~/datasets")
    assert paths.data_root() == tmp_path / "home" / "datasets"


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_offline_flag(clean_env, value, expected):
    clean_env.setenv("GEOKD_OFFLINE", value)
    assert paths.offline() is expected


def _read_only_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_stage_copies_from_first_source_and_never_writes_sources(tmp_path):
    first, second, target = tmp_path / "first", tmp_path / "second", tmp_path / "target"
    first.mkdir()
    second.mkdir()
    (first / "a.txt").write_text("1 2\n3 4")  # no trailing newline
    (second / "a.txt").write_text("ignored\n")
    (second / "b.bin").write_bytes(b"\x00\x01")
    _read_only_tree(first)
    _read_only_tree(second)
    before = sorted(p.name for p in first.iterdir()) + sorted(p.name for p in second.iterdir())

    missing = paths.stage_raw_files(["a.txt", "b.bin", "c.txt"], target, [None, first, second])

    assert missing == ["c.txt"]
    # PyG's read_txt_array drops a final line without a newline: staging adds it.
    assert (target / "a.txt").read_text() == "1 2\n3 4\n"
    assert (target / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in first.iterdir()) + sorted(p.name for p in second.iterdir()) == before
    assert sorted(os.listdir(target)) == ["a.txt", "b.bin"]  # no temporary files left


def test_stage_keeps_existing_files(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "a.txt").write_text("new\n")
    (target / "a.txt").write_text("old\n")
    assert paths.stage_raw_files(["a.txt"], target, [source]) == []
    assert (target / "a.txt").read_text() == "old\n"


def test_missing_data_message_names_files_and_places(clean_env, tmp_path):
    clean_env.setenv("GEOKD_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "cache" / "TUDataset" / "X" / "raw"
    message = paths.missing_data_message("TUDataset", target, ["X_A.txt"], [tmp_path / "data", None])
    assert "X_A.txt" in message and str(tmp_path / "data") in message and str(target) in message
    assert "GEOKD_OFFLINE" in message and "<GEOKD_DATA>/TUDataset/X/raw" in message
