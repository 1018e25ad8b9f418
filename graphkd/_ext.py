"""Loader of ``graphkd._C``, the compiled library behind ``torch.ops.graphkd``."""

from geokd.extension import ExtensionLibrary

library = ExtensionLibrary("graphkd")

#: What the compiled library provides here; see :meth:`geokd.extension.ExtensionLibrary.info`.
extension_info = library.info
