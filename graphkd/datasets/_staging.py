"""Staging of raw files for PyG datasets: data root or embedded copy first, download last."""

from __future__ import annotations

from pathlib import Path

from geokd.paths import MissingDataError, data_root, missing_data_message, offline, stage_raw_files

EMBEDDED_ROOT = Path(__file__).resolve().parent / "embedded"


class StagedRawFiles:
    """Mixin for a PyG dataset class whose raw files may already be on disk.

    ``download()`` first copies the raw files from ``<data root>/<raw_relpath>``
    and from the copy embedded in the package (if any) into the dataset's
    writable ``raw_dir``; only files found in neither place are downloaded by
    the PyG parent class, and with ``GEOKD_OFFLINE=1`` they raise
    :class:`~geokd.paths.MissingDataError` instead.
    """

    #: the raw directory relative to the data root, e.g. ``"Planetoid/Cora/raw"``.
    raw_relpath: str

    def _source_dirs(self) -> list[Path]:
        return [data_root() / self.raw_relpath, EMBEDDED_ROOT / self.raw_relpath]

    def _files_to_stage(self) -> list[str]:
        """Every file to copy. PyG skips ``download()`` once its ``raw_file_names``
        exist, so optional files come first and those names last: an interrupted
        copy is then resumed on the next run rather than silently half done."""
        required = list(self.raw_file_names)
        optional: set[str] = set()
        for source in self._source_dirs():
            if source.is_dir():
                optional.update(p.name for p in source.iterdir() if p.is_file() and self._is_raw_file(p.name))
        return sorted(optional - set(required)) + required

    def _is_raw_file(self, name: str) -> bool:
        return name in self.raw_file_names

    def download(self) -> None:
        sources = self._source_dirs()
        stage_raw_files(self._files_to_stage(), self.raw_dir, sources)
        missing = [name for name in self.raw_file_names if not (Path(self.raw_dir) / name).exists()]
        if not missing:
            return
        if offline():
            raise MissingDataError(missing_data_message(type(self).__name__, self.raw_dir, missing, sources))
        super().download()
