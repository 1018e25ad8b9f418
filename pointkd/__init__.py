"""pointkd: point-cloud detector compression and radiance-field conversion.

Compiled ops live in ``torch.ops.pointkd`` and are wrapped in :mod:`pointkd.ops`;
:func:`extension_info` reports what was built.
"""

from geokd import __version__
from pointkd import ops
from pointkd._ext import extension_info

__all__ = ["__version__", "extension_info", "ops"]
