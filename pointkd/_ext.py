"""Loader of ``pointkd._C``, the compiled library behind ``torch.ops.pointkd``."""

from geokd.extension import ExtensionLibrary

library = ExtensionLibrary("pointkd")

#: What the compiled library provides here; see :meth:`geokd.extension.ExtensionLibrary.info`.
extension_info = library.info
