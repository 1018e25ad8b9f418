"""Training a radiance field from scratch on posed images.

Reads top to bottom: data, field, optimizer, loop (random rays, render,
photometric loss, occupancy-grid refresh, checkpoints), evaluation on the
held-out views (PSNR, SSIM, PNG renders). Runs as a plain process or under
``torchrun`` (DDP: each rank draws its own rays, gradients are averaged).

A run directory holds ``last.pt`` (resumed automatically with the same
configuration), ``field.pt`` (the trained field, :func:`~pointkd.nerf.fields.load_field`),
``results.json``, ``curve.jsonl`` (loss and PSNR along training),
``log.txt`` and ``renders/`` (ground truth | render | depth for held-out views).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from geokd.checkpoint import CheckpointManager
from geokd.distributed import DistributedContext, init_distributed, unwrap_model, wrap_model
from geokd.log import get_logger, progress
from geokd.seed import seed_everything
from pointkd.nerf.fields import RadianceField, build_field, num_parameters, save_field
from pointkd.nerf.metrics import mse_to_psnr
from pointkd.nerf.render import OccupancyGrid, render_image, render_rays
from pointkd.ops.hash_grid import HashGridConfig

# Per-field architecture and learning rates for scenes at reduced resolution
# on a CPU: the papers' schedules (Instant-NGP 1e-2 with Adam(0.9, 0.99),
# DVGO 1e-1 on voxels and 1e-3 on the decoder, TensoRF 2e-2 on factors and
# 1e-3 on the network, NeRF 5e-4) with field sizes suited to ~100 px images.
FIELD_PRESETS: dict[str, dict[str, Any]] = {
    "hash": {
        "field": {"config": {"log2_table_size": 18, "finest_resolution": 1024}},
        "lr": {"encoding": 1e-2, "default": 1e-2},
    },
    "grid": {"field": {"resolution": 128}, "lr": {"volume": 1e-1, "default": 1e-3}},
    "vm": {"field": {"resolution": 128}, "lr": {"planes": 2e-2, "default": 1e-3}},
    "mlp": {"field": {"width": 128, "depth": 4}, "lr": {"default": 1e-3}},
}


@dataclass
class NerfTrainConfig:
    """Options of :func:`train_nerf` (the ``pointkd nerf train`` flags).

    Args:
        field (str): ``mlp``, ``grid``, ``vm`` or ``hash``.
        data (str): ``procedural`` (the analytic scene), ``lego`` (the
            NeRF-synthetic scene under the data root) or a path to a
            NeRF-synthetic scene folder.
        scale (float): image downscaling of NeRF-synthetic scenes.
        iters (int): optimisation steps.
        batch_rays (int): rays per step (per rank).
        lr_scale (float): multiplies the preset learning rates.
        lr_decay (float): learning rates decay exponentially to this factor at the end.
        samples_per_diagonal (int): the ray-marching step is the box diagonal over this.
        occupancy_resolution (int): cells per axis of the occupancy grid.
        occupancy_every (int): steps between occupancy refreshes.
        occupancy_warmup (int): steps before the first refresh (the grid is full until then).
        holdout_every (int): every k-th view is held out for evaluation.
        eval_views (int or None): held-out views evaluated (``None``: all).
        render_views (int): held-out views written as PNG.
        checkpoint_every (int): steps between checkpoints.
        log_every (int): steps between curve entries.
        seed (int): seed of the field's initialisation and of the ray batches.
        num_views (int): views of the procedural scene.
        resolution (int): image size of the procedural scene.
        field_options (dict or None): constructor arguments that override the
            field's preset (e.g. ``{"resolution": 64}`` for a grid).
    """

    field: str = "hash"
    data: str = "procedural"
    scale: float = 0.125
    iters: int = 2000
    batch_rays: int = 4096
    lr_scale: float = 1.0
    lr_decay: float = 0.1
    samples_per_diagonal: int = 512
    occupancy_resolution: int = 64
    occupancy_every: int = 16
    occupancy_warmup: int = 16
    holdout_every: int = 8
    eval_views: int | None = None
    render_views: int = 3
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    num_views: int = 40
    resolution: int = 64
    field_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.field not in FIELD_PRESETS:
            raise ValueError(f"field must be one of {sorted(FIELD_PRESETS)}, got {self.field!r}")
        for name in ("iters", "batch_rays", "samples_per_diagonal", "occupancy_resolution", "occupancy_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if not 0 < self.lr_decay <= 1 or self.lr_scale <= 0:
            raise ValueError(f"lr_decay must be in (0, 1] and lr_scale > 0, got {self.lr_decay} and {self.lr_scale}")

    def resume_key(self) -> dict[str, Any]:
        """What must match for a run directory to be resumed."""
        keep = ("field", "data", "scale", "batch_rays", "lr_scale", "samples_per_diagonal", "holdout_every", "seed")
        return {name: getattr(self, name) for name in keep} | {"field_options": self.field_options or {}}


def load_scenes(config: NerfTrainConfig) -> tuple[Any, Any]:
    """The training and held-out :class:`~pointkd.nerf.data.NerfScene` of ``config.data``."""
    from pointkd.nerf import data

    if config.data == "procedural":
        kwargs = {
            "num_views": config.num_views,
            "height": config.resolution,
            "width": config.resolution,
            "holdout_every": config.holdout_every,
            "seed": config.seed,
        }
        return data.procedural_scene(split="train", **kwargs), data.procedural_scene(split="test", **kwargs)
    root = (
        data.nerf_synthetic_root(config.data)
        if "/" not in config.data and not Path(config.data).exists()
        else config.data
    )
    kwargs = {"scale": config.scale, "holdout_every": config.holdout_every}
    return data.load_blender(root, split="train", **kwargs), data.load_blender(root, split="test", **kwargs)


def build_preset_field(kind: str, aabb: Tensor, overrides: dict[str, Any] | None = None) -> RadianceField:
    """The field of ``kind`` with its preset arguments, updated by ``overrides``."""
    options = dict(FIELD_PRESETS[kind]["field"]) | dict(overrides or {})
    if kind == "hash" and isinstance(options.get("config"), dict):
        options["config"] = HashGridConfig(**options["config"])
    return build_field(kind, aabb, **options)


def make_optimizer(field: RadianceField, lr_scale: float) -> torch.optim.Optimizer:
    """Adam with the preset learning rate of each parameter group (by name prefix)."""
    rates = FIELD_PRESETS[field.kind]["lr"]
    groups: dict[str, list[Tensor]] = {}
    for name, parameter in field.named_parameters():
        prefix = next((key for key in rates if key != "default" and name.startswith(key)), "default")
        if field.kind == "vm" and ("planes" in name or "lines" in name):
            prefix = "planes"
        groups.setdefault(prefix, []).append(parameter)
    param_groups = [
        {"params": params, "lr": rates[prefix] * lr_scale, "name": prefix} for prefix, params in groups.items()
    ]
    # Instant-NGP's epsilon: rarely touched hash entries must still move.
    eps = 1e-15 if field.kind == "hash" else 1e-8
    return torch.optim.Adam(param_groups, betas=(0.9, 0.99), eps=eps)


def all_rays(scene: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Every pixel's ray and colour, flattened: ``(N H W, 3)`` each."""
    rays_o, rays_d = scene.rays()
    return rays_o.reshape(-1, 3), rays_d.reshape(-1, 3), scene.images.reshape(-1, 3)


def evaluate(
    field: RadianceField, scene: Any, render_kwargs: dict[str, Any], max_views: int | None = None
) -> tuple[list[dict[str, float]], list[dict[str, Tensor]]]:
    """PSNR and SSIM of the rendered held-out views, and the renders."""
    from pointkd.nerf.data import get_rays
    from pointkd.nerf.metrics import psnr, ssim

    field.eval()
    views = range(scene.images.shape[0] if max_views is None else min(max_views, scene.images.shape[0]))
    scores, renders = [], []
    for view in views:
        rays_o, rays_d = get_rays(scene.poses[view], scene.height, scene.width, scene.focal)
        out = render_image(field, rays_o, rays_d, **render_kwargs)
        prediction = out["color"].clamp(0, 1)
        target = scene.images[view]
        scores.append(
            {
                "view": int(scene.view_ids[view]),
                "psnr": float(psnr(prediction, target)),
                "ssim": float(ssim(prediction, target)),
            }
        )
        renders.append(out)
    field.train()
    return scores, renders


def write_render_png(path: Path, target: Tensor, render: dict[str, Tensor], far: float) -> None:
    """Ground truth | render | depth side by side."""
    from PIL import Image

    depth = (render["depth"] / far).clamp(0, 1)[..., None].expand(-1, -1, 3)
    panel = torch.cat([target, render["color"].clamp(0, 1), depth], dim=1)
    array = (panel * 255).round().to(torch.uint8).cpu().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def train_nerf(config: NerfTrainConfig, out_dir: str | Path, ctx: DistributedContext | None = None) -> dict[str, Any]:
    """Train ``config.field`` from scratch on ``config.data``; see the module docstring for the outputs."""
    ctx = ctx or init_distributed()
    out_dir = Path(out_dir)
    logger = get_logger("pointkd.nerf", ctx, log_dir=out_dir)
    seed_everything(config.seed)

    # -- data -------------------------------------------------------------------
    train_scene, test_scene = load_scenes(config)
    rays_o, rays_d, colors = all_rays(train_scene)
    aabb = train_scene.aabb.float()
    background = train_scene.background.float()
    diagonal = float((aabb[3:] - aabb[:3]).norm())
    step_size = diagonal / config.samples_per_diagonal
    render_kwargs = {
        "aabb": aabb,
        "near": float(train_scene.near),
        "far": float(train_scene.far),
        "step_size": step_size,
        "max_samples": config.samples_per_diagonal + 1,
        "background": background,
    }
    logger.info(
        "data %s: %d training views, %d held-out views (%s), %dx%d, %d rays",
        config.data, train_scene.images.shape[0], test_scene.images.shape[0],
        f"every {config.holdout_every}th view", train_scene.height, train_scene.width, rays_o.shape[0],
    )  # fmt: skip

    # -- field, occupancy grid, optimizer -------------------------------------------
    field = build_preset_field(config.field, aabb, config.field_options).to(ctx.device)
    occupancy = OccupancyGrid(aabb, config.occupancy_resolution, step_size=step_size).to(ctx.device)
    optimizer = make_optimizer(field, config.lr_scale)
    manager = CheckpointManager(out_dir, ctx)
    start, elapsed, curve = 0, 0.0, []
    state = manager.resume(config_key=config.resume_key())
    if state is not None:
        if state["field_config"] != field.config():
            # A grid upsampled during training: rebuild at the saved size.
            saved = dict(state["field_config"])
            field = build_field(config.field, saved.pop("aabb"), **saved).to(ctx.device)
            optimizer = make_optimizer(field, config.lr_scale)
        field.load_state_dict(state["field"])
        optimizer.load_state_dict(state["optimizer"])
        occupancy.load_state_dict(state["occupancy"])
        start, elapsed, curve = state["iteration"], state["elapsed_s"], state["curve"]
        logger.info("resumed from %s at step %d", manager.last_path, start)
    logger.info("field %s: %s parameters", config.field, f"{num_parameters(field):,}")
    model = wrap_model(field, ctx)
    base_rates = [group["lr"] for group in optimizer.param_groups]
    for group, rate in zip(optimizer.param_groups, base_rates):
        group.setdefault("initial_lr", rate)

    # -- loop -------------------------------------------------------------------
    generator = torch.Generator()
    bar = progress(range(start, config.iters), ctx, initial=start, total=config.iters, desc=f"nerf {config.field}")
    window_loss, window_samples, window_steps = 0.0, 0, 0
    tic = time.perf_counter()
    for iteration in bar:
        # Per-step seeds: a resumed run draws the same rays; ranks draw different ones.
        generator.manual_seed(config.seed * 1_000_003 + iteration * 7919 + ctx.rank)
        if iteration >= config.occupancy_warmup and iteration % config.occupancy_every == 0:
            grid_generator = torch.Generator().manual_seed(config.seed + iteration)
            occupancy.update(unwrap_model(model).density, generator=grid_generator)
        progress_fraction = iteration / max(config.iters - 1, 1)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * config.lr_decay**progress_fraction
        index = torch.randint(0, rays_o.shape[0], (config.batch_rays,), generator=generator)
        out = render_rays(
            model,
            rays_o[index].to(ctx.device),
            rays_d[index].to(ctx.device),
            occupancy=occupancy.bitfield,
            **render_kwargs,
        )
        loss = F.mse_loss(out.color, colors[index].to(ctx.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window_loss += float(loss.detach())
        window_samples += out.num_samples
        window_steps += 1
        step = iteration + 1
        if step % config.log_every == 0 or step == config.iters:
            mean_loss = window_loss / window_steps
            entry = {
                "step": step,
                "loss": mean_loss,
                "psnr": float(mse_to_psnr(max(mean_loss, 1e-12))),
                "samples_per_ray": window_samples / (window_steps * config.batch_rays),
                "occupied": occupancy.occupied_fraction,
                "elapsed_s": elapsed + time.perf_counter() - tic,
            }
            curve.append(entry)
            bar.set_postfix(loss=f"{mean_loss:.4f}", psnr=f"{entry['psnr']:.2f}", spr=f"{entry['samples_per_ray']:.0f}")
            window_loss, window_samples, window_steps = 0.0, 0, 0
        if step % config.checkpoint_every == 0 or step == config.iters:
            manager.save(
                {
                    "iteration": step,
                    "elapsed_s": elapsed + time.perf_counter() - tic,
                    "config_key": config.resume_key(),
                    "field_config": unwrap_model(model).config(),
                    "field": unwrap_model(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "occupancy": occupancy.state_dict(),
                    "curve": curve,
                }
            )
    bar.close()
    train_time = elapsed + time.perf_counter() - tic
    field = unwrap_model(model)

    # -- evaluation ---------------------------------------------------------------
    results: dict[str, Any] = {"config": dataclasses.asdict(config), "train_time_s": train_time}
    if ctx.is_main:
        tic = time.perf_counter()
        eval_kwargs = dict(render_kwargs, occupancy=occupancy.bitfield)
        scores, renders = evaluate(field, test_scene, eval_kwargs, config.eval_views)
        render_time = time.perf_counter() - tic
        for view, (score, render) in enumerate(zip(scores, renders)):
            if view < config.render_views:
                write_render_png(
                    out_dir / "renders" / f"view_{score['view']:03d}.png",
                    test_scene.images[view],
                    render,
                    float(train_scene.far),
                )
        results.update(
            {
                "field": config.field,
                "parameters": num_parameters(field),
                "iterations": config.iters,
                "test_psnr": sum(score["psnr"] for score in scores) / len(scores),
                "test_ssim": sum(score["ssim"] for score in scores) / len(scores),
                "test_views": scores,
                "render_time_s_per_view": render_time / max(len(scores), 1),
                "occupied_fraction": occupancy.occupied_fraction,
                "device": str(ctx.device),
                "world_size": ctx.world_size,
                "torch_threads": torch.get_num_threads(),
            }
        )
        save_field(
            field,
            out_dir / "field.pt",
            {"data": config.data, "scale": config.scale, "iterations": config.iters, "test_psnr": results["test_psnr"]},
        )
        (out_dir / "curve.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in curve))
        (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        logger.info(
            "%s on %s: held-out PSNR %.2f dB, SSIM %.4f, %d steps in %.0f s",
            config.field, config.data, results["test_psnr"], results["test_ssim"], config.iters, train_time,
        )  # fmt: skip
    ctx.barrier()
    return results
