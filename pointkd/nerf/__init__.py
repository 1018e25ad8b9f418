"""Radiance-field building blocks: input encodings."""

from pointkd.nerf.encoding import HashGridEncoding

__all__ = ["HashGridEncoding"]
