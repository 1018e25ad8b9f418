"""Loader of ``pointkd._C``, the compiled library behind ``torch.ops.pointkd``."""

from geokd.extension import ExtensionLibrary

library = ExtensionLibrary("pointkd")


def extension_info() -> dict:
    """What the compiled library provides here.

    Returns:
        dict: ``loaded`` (bool) and ``error`` (why not, or ``None``), ``path``,
        ``ops`` (op name to ``{"cpu": bool, "cuda": bool}``: whether a kernel is
        registered for that backend), ``build`` (torch and CUDA versions the
        library was compiled with; CUDA ``None`` without CUDA kernels) and
        ``runtime`` (torch and CUDA versions in use, GPU availability).
    """
    return library.info()
