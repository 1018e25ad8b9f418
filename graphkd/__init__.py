"""graphkd: GNN-to-MLP distillation and graph dataset condensation.

Compiled ops live in ``torch.ops.graphkd`` and are wrapped in :mod:`graphkd.ops`;
:func:`extension_info` reports what was built.
"""

from geokd import __version__
from graphkd import ops
from graphkd._ext import extension_info

__all__ = ["__version__", "extension_info", "ops"]
