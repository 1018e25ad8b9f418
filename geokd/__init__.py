"""geokd core: utilities that ``graphkd`` and ``pointkd`` share.

* :mod:`geokd.paths`: the data root, the writable cache and offline staging of raw files.
* :mod:`geokd.checkpoint`: atomic, rank-aware checkpoints with resume.
* :mod:`geokd.distributed`: ``torchrun`` initialisation (gloo on CPU, NCCL on GPU) and DDP helpers.
* :mod:`geokd.logging`: rank-aware logging and progress bars.
* :mod:`geokd.seed`: seeding of every random number generator in use.
* :mod:`geokd.extension`: the loader of the compiled libraries.
"""

__version__ = "0.1.0"
