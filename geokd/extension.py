"""Loading of a package's compiled library (``graphkd._C``, ``pointkd._C``).

The library registers its ops into ``torch.ops.<package>``. Loading happens
once, on first use; if the library is missing (pure-Python install,
``GEOKD_NO_EXTENSION=1``) or broken (built against another torch), importing the
package still works, and calling an op raises :class:`ExtensionNotBuiltError`
with instructions to rebuild.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import threading
from typing import Any

import torch

REBUILD_HINT = (
    "Rebuild it from the source checkout with:\n"
    "    pip install --no-build-isolation -e .        # CPU kernels (and CUDA ones with a CUDA torch + toolkit)\n"
    "    FORCE_CUDA=1 pip install --no-build-isolation -e .   # insist on the CUDA kernels\n"
    "and check the result with `{package} info`. A library built against another torch version must be\n"
    "rebuilt after every torch upgrade. GEOKD_NO_EXTENSION=1 in the environment disables loading it."
)


class ExtensionNotBuiltError(RuntimeError):
    """Raised when an op is called but its compiled library is not available."""


class ExtensionLibrary:
    """Lazy loader of one compiled library.

    Args:
        package (str): the Python package owning the library, e.g. ``"graphkd"``;
            the library is the module ``<package>._C`` and its ops live in
            ``torch.ops.<package>``.
    """

    def __init__(self, package: str):
        self.package = package
        self._lock = threading.Lock()
        self._loaded: bool | None = None
        self._error: str | None = None
        self._path: str | None = None

    def load(self) -> bool:
        """Load the library once; returns whether it is available."""
        if self._loaded is not None:
            return self._loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._try_load()
        return self._loaded

    def _try_load(self) -> bool:
        if os.environ.get("GEOKD_NO_EXTENSION", "0") not in ("", "0"):
            self._error = "loading disabled by GEOKD_NO_EXTENSION"
            return False
        try:
            # Only the library beside the imported package counts: another copy
            # found elsewhere on the path (e.g. an editable install) would be
            # built from other sources.
            package = importlib.import_module(self.package)
            spec = importlib.machinery.PathFinder.find_spec(f"{self.package}._C", list(package.__path__))
        except (ImportError, ValueError, AttributeError) as error:
            spec, self._error = None, f"{type(error).__name__}: {error}"
        if spec is None or spec.origin is None:
            self._error = self._error or f"{self.package}._C is not installed (built without the extension)"
            return False
        self._path = spec.origin
        try:
            torch.ops.load_library(spec.origin)
        except (OSError, RuntimeError, ImportError) as error:
            # An ABI mismatch (built against another torch) surfaces here as an
            # undefined symbol; keep the first line, which names it.
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self._error = f"{type(error).__name__}: {first_line}"
            return False
        return True

    @property
    def error(self) -> str | None:
        self.load()
        return self._error

    def require(self, op: str | None = None) -> None:
        """Raise :class:`ExtensionNotBuiltError` unless the library is loaded."""
        if self.load():
            return
        what = f"torch.ops.{self.package}.{op}" if op else f"the {self.package} library"
        raise ExtensionNotBuiltError(
            f"{what} needs the compiled library {self.package}._C, which is not available "
            f"({self._error}).\n" + REBUILD_HINT.format(package=self.package)
        )

    def op(self, name: str) -> Any:
        """The op ``torch.ops.<package>.<name>``, after checking the library."""
        self.require(name)
        return getattr(getattr(torch.ops, self.package), name)

    def op_names(self) -> list[str]:
        """Names of the ops the library registered (build-info ops included)."""
        if not self.load():
            return []
        prefix = f"{self.package}::"
        names = {name[len(prefix):].split(".")[0] for name in torch._C._dispatch_get_all_op_names() if name.startswith(prefix)}
        return sorted(names)

    def has_kernel(self, op: str, dispatch_key: str) -> bool:
        """Whether ``op`` has a kernel registered for ``dispatch_key`` ("CPU", "CUDA")."""
        return bool(torch._C._dispatch_has_kernel_for_dispatch_key(f"{self.package}::{op}", dispatch_key))

    def info(self) -> dict:
        """What the compiled library provides here.

        Returns:
            dict: ``loaded`` (bool) and ``error`` (why not, or ``None``),
            ``path`` of the shared object, ``ops`` (op name to
            ``{"cpu": bool, "cuda": bool}``: whether a kernel is registered for
            that backend), ``build`` (torch and CUDA versions the library was
            compiled with; CUDA ``None`` without CUDA kernels) and ``runtime``
            (torch and CUDA versions in use, GPU availability, CPU threads).
        """
        loaded = self.load()
        info: dict[str, Any] = {
            "package": self.package,
            "library": f"{self.package}._C",
            "loaded": loaded,
            "path": self._path,
            "error": self._error,
            "ops": {},
            "build": {"torch": None, "cuda": None},
            "runtime": {
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "cuda_available": torch.cuda.is_available(),
                "num_threads": torch.get_num_threads(),
            },
        }
        if not loaded:
            return info
        ops = getattr(torch.ops, self.package)
        cuda_version = int(ops.cuda_version())
        info["build"] = {
            "torch": str(ops.torch_version()),
            "cuda": None if cuda_version < 0 else f"{cuda_version // 1000}.{cuda_version % 1000 // 10}",
        }
        for name in self.op_names():
            if name in ("cuda_version", "torch_version"):
                continue
            info["ops"][name] = {key.lower(): self.has_kernel(name, key) for key in ("CPU", "CUDA")}
        return info


def format_info(info: dict) -> str:
    """Human-readable rendering of :meth:`ExtensionLibrary.info`."""
    lines = [f"{info['library']}: {'loaded' if info['loaded'] else 'NOT LOADED'}"]
    if info["path"]:
        lines.append(f"  path:    {info['path']}")
    if info["error"]:
        lines.append(f"  error:   {info['error']}")
        lines.append("  " + REBUILD_HINT.format(package=info["package"]).replace("\n", "\n  "))
    build, runtime = info["build"], info["runtime"]
    lines.append(f"  build:   torch {build['torch'] or '-'}, CUDA {build['cuda'] or 'not compiled'}")
    lines.append(
        f"  runtime: torch {runtime['torch']}, CUDA {runtime['cuda'] or 'none'}, "
        f"GPU {'available' if runtime['cuda_available'] else 'not available'}, {runtime['num_threads']} CPU threads"
    )
    if info["ops"]:
        width = max(len(name) for name in info["ops"])
        lines.append(f"  {'op'.ljust(width)}  CPU  CUDA")
        for name, kernels in info["ops"].items():
            lines.append(
                f"  {name.ljust(width)}  {'yes' if kernels['cpu'] else 'no ':3}  {'yes' if kernels['cuda'] else 'no'}"
            )
    return "\n".join(lines)
