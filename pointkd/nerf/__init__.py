"""Radiance fields: encodings, four field architectures, data, rendering, metrics and training.

- :mod:`pointkd.nerf.fields`: :class:`MLPField`, :class:`GridField`, :class:`VMField`,
  :class:`HashField` behind one interface (``density``, ``features``, ``color``), saved and loaded
  with their metadata.
- :mod:`pointkd.nerf.data`: the Blender (NeRF-synthetic) loader, an analytic procedural scene, rays.
- :mod:`pointkd.nerf.render`: packed volume rendering and the occupancy grid.
- :mod:`pointkd.nerf.metrics`: PSNR and SSIM.
- :mod:`pointkd.nerf.train`: training from scratch (``pointkd nerf train``).
"""

from pointkd.nerf.data import NerfScene, ProceduralScene, RaySampler, get_rays, load_blender, procedural_scene
from pointkd.nerf.encoding import HashGridEncoding, PositionalEncoding, SphericalHarmonicsEncoding, spherical_harmonics
from pointkd.nerf.fields import (
    GridField,
    HashField,
    MLPField,
    RadianceField,
    VMField,
    build_field,
    load_field,
    save_field,
)
from pointkd.nerf.metrics import psnr, ssim
from pointkd.nerf.render import OccupancyGrid, RenderOutput, render_image, render_rays

__all__ = [
    "GridField",
    "HashField",
    "HashGridEncoding",
    "MLPField",
    "NerfScene",
    "OccupancyGrid",
    "PositionalEncoding",
    "ProceduralScene",
    "RadianceField",
    "RaySampler",
    "RenderOutput",
    "SphericalHarmonicsEncoding",
    "VMField",
    "build_field",
    "get_rays",
    "load_blender",
    "load_field",
    "procedural_scene",
    "psnr",
    "render_image",
    "render_rays",
    "save_field",
    "spherical_harmonics",
    "ssim",
]
