"""Where datasets come from and where processed files go.

Two places, kept apart because the first may be read-only (a shared mount):

* the **data root** holds raw files: ``$GEOKD_DATA`` if set, else the cache root.
  geokd never writes into it.
* the **cache root** is writable: ``$GEOKD_CACHE`` if set, else
  ``$XDG_CACHE_HOME/geokd`` or ``~/.cache/geokd``. Raw files are staged (copied)
  from the data root or from data embedded in the package into
  ``<cache>/<relative path>`` before PyG/OGB process them there.

A raw file found nowhere is downloaded from its canonical source as PyG does,
unless ``GEOKD_OFFLINE=1``, in which case :class:`MissingDataError` lists the
files expected and where they were looked for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from filelock import FileLock


class MissingDataError(FileNotFoundError):
    """Raw data files are missing and may not be downloaded (``GEOKD_OFFLINE=1``)."""


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else None


def cache_root() -> Path:
    """Writable cache: ``$GEOKD_CACHE``, else ``$XDG_CACHE_HOME/geokd``, else ``~/.cache/geokd``."""
    explicit = _env_path("GEOKD_CACHE")
    if explicit is not None:
        return explicit
    xdg = _env_path("XDG_CACHE_HOME")
    return (xdg if xdg is not None else Path.home() / ".cache") / "geokd"


def data_root() -> Path:
    """Read-only root of raw datasets: ``$GEOKD_DATA``, else :func:`cache_root`."""
    explicit = _env_path("GEOKD_DATA")
    return explicit if explicit is not None else cache_root()


def offline() -> bool:
    """Whether downloads are forbidden (``GEOKD_OFFLINE=1``)."""
    return os.environ.get("GEOKD_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def dataset_lock(directory: str | os.PathLike) -> FileLock:
    """An inter-process lock on a dataset's writable directory.

    Staging and processing hold it, so that the ranks of a ``torchrun`` job (or
    any concurrent runs) never read a half-written processed file: the first to
    take it prepares the dataset, the others then find it ready.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return FileLock(str(directory / ".geokd.lock"))


def _copy_atomic(source: Path, target: Path, ensure_trailing_newline: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
            if ensure_trailing_newline and out.tell() > 0:
                src.seek(-1, os.SEEK_END)
                if src.read(1) != b"\n":
                    # PyG's read_txt_array drops a last line that has no newline.
                    out.write(b"\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def stage_raw_files(
    names: Sequence[str],
    target_dir: str | os.PathLike,
    source_dirs: Iterable[str | os.PathLike | None],
    text_suffixes: tuple[str, ...] = (".txt", ".csv"),
) -> list[str]:
    """Copy raw files into a writable directory, from the first source holding each.

    Files already in ``target_dir`` are kept. Text files get a trailing newline
    if they lack one. Copies are atomic, so an interrupted run never leaves a
    truncated file behind.

    Args:
        names (Sequence[str]): file names expected in ``target_dir``.
        target_dir (path): writable directory (the dataset's ``raw_dir``).
        source_dirs (Iterable[path or None]): directories searched in order;
            ``None`` entries and the target itself are skipped.
        text_suffixes (tuple[str, ...]): suffixes of files treated as text.
            (default: ``(".txt", ".csv")``)

    Returns:
        list[str]: the names still missing after staging.
    """
    target = Path(target_dir)
    sources = [Path(s).resolve() for s in source_dirs if s is not None]
    sources = [s for s in sources if s.is_dir() and s != target.resolve()]
    missing = []
    for name in names:
        if (target / name).exists():
            continue
        for source in sources:
            if (source / name).is_file():
                _copy_atomic(source / name, target / name, name.endswith(text_suffixes))
                break
        else:
            missing.append(name)
    return missing


def missing_data_message(dataset: str, target_dir: str | os.PathLike, missing: Sequence[str], searched: Iterable) -> str:
    """The error text for :class:`MissingDataError`."""
    searched_dirs = [str(s) for s in searched if s is not None]
    return (
        f"{dataset}: {len(missing)} raw file(s) missing and GEOKD_OFFLINE=1 forbids downloading them:\n"
        + "".join(f"    {name}\n" for name in missing)
        + "looked for in:\n"
        + "".join(f"    {s}\n" for s in searched_dirs)
        + f"    {target_dir} (the writable cache)\n"
        f"Put the files in one of these places (set GEOKD_DATA to a folder laid out like "
        f"<GEOKD_DATA>/{Path(target_dir).relative_to(cache_root()) if _is_relative(target_dir) else '...'}), "
        "or unset GEOKD_OFFLINE to download them."
    )


def _is_relative(path: str | os.PathLike) -> bool:
    try:
        Path(path).resolve().relative_to(cache_root())
    except ValueError:
        return False
    return True
