import io
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from geokd.paths import MissingDataError
from pointkd.nerf.data import (
    BLENDER_AABB,
    NerfScene,
    ProceduralScene,
    RaySampler,
    get_rays,
    load_blender,
    look_at,
    nerf_synthetic_root,
    procedural_scene,
)

LEGO_CAMERA_ANGLE_X = 0.6911112070083618
# 1/16 of lego's 800x800: 50x50 images keep the loads below a few seconds.
LEGO_SCALE = 0.0625


def _lego_root():
    try:
        return nerf_synthetic_root("lego")
    except MissingDataError:
        pytest.skip("needs the offline NeRF-synthetic lego scene under GEOKD_DATA (e.g. ../shared/data)")


@pytest.fixture(scope="module")
def lego_train():
    return load_blender(_lego_root(), split="train", scale=LEGO_SCALE)


@pytest.fixture(scope="module")
def lego_test():
    return load_blender(_lego_root(), split="test", scale=LEGO_SCALE)


def _assert_rotations(poses, atol=1e-5):
    rotation = poses[..., :3, :3].double()
    identity = torch.eye(3, dtype=torch.float64).expand_as(rotation)
    torch.testing.assert_close(rotation.transpose(-1, -2) @ rotation, identity, atol=atol, rtol=0)
    determinant = torch.linalg.det(rotation)
    torch.testing.assert_close(determinant, torch.ones_like(determinant), atol=atol, rtol=0)
    assert torch.equal(
        poses[..., 3, :], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=poses.dtype).expand_as(poses[..., 3, :])
    )


# --------------------------------------------------------------------------------------------------
# get_rays / look_at


def test_get_rays_identity_pose_centre_pixel_looks_down_minus_z():
    rays_o, rays_d = get_rays(torch.eye(4), height=5, width=5, focal=3.0)
    assert rays_o.shape == rays_d.shape == (5, 5, 3)
    assert torch.equal(rays_o, torch.zeros(5, 5, 3))
    assert torch.equal(rays_d[2, 2], torch.tensor([0.0, 0.0, -1.0]))
    # Columns grow to +x, rows grow downwards (to -y).
    assert rays_d[2, 4, 0] > 0 and rays_d[2, 0, 0] < 0
    assert rays_d[0, 2, 1] > 0 and rays_d[4, 2, 1] < 0


def test_get_rays_image_edges_are_half_the_field_of_view():
    fov, height, width = 0.8, 6, 8
    focal = 0.5 * width / math.tan(0.5 * fov)
    # With pixel_center=0 the first pixel's ray passes through the image's top-left corner.
    _, corner = get_rays(torch.eye(4, dtype=torch.float64), height, width, focal, pixel_center=0.0, normalize=False)
    assert math.isclose(math.atan2(-corner[0, 0, 0].item(), 1.0), 0.5 * fov, rel_tol=1e-12)
    assert math.isclose(corner[0, 0, 1].item(), 0.5 * height / focal, rel_tol=1e-12)
    # With pixel_center=1 the last pixel's ray passes through the bottom-right corner.
    _, last = get_rays(torch.eye(4, dtype=torch.float64), height, width, focal, pixel_center=1.0, normalize=False)
    assert math.isclose(math.atan2(last[-1, -1, 0].item(), 1.0), 0.5 * fov, rel_tol=1e-12)
    assert math.isclose(last[-1, -1, 1].item(), -0.5 * height / focal, rel_tol=1e-12)


def test_get_rays_rotates_camera_directions_and_normalizes():
    poses = look_at(torch.tensor([[0.0, -4.0, 1.0], [3.0, 2.0, -1.0]], dtype=torch.float64))
    rays_o, raw = get_rays(poses, 7, 9, focal=10.0, normalize=False)
    _, unit = get_rays(poses, 7, 9, focal=10.0)
    assert rays_o.shape == raw.shape == unit.shape == (2, 7, 9, 3) and unit.dtype == torch.float64
    torch.testing.assert_close(rays_o, poses[:, None, None, :3, 3].expand(2, 7, 9, 3))
    torch.testing.assert_close(torch.linalg.vector_norm(unit, dim=-1), torch.ones(2, 7, 9, dtype=torch.float64))
    torch.testing.assert_close(unit, raw / torch.linalg.vector_norm(raw, dim=-1, keepdim=True))
    # Unnormalised directions have camera-space depth -1: t is depth along the optical axis.
    camera = torch.einsum("nji,nhwj->nhwi", poses[:, :3, :3], raw)
    torch.testing.assert_close(camera[..., 2], -torch.ones(2, 7, 9, dtype=torch.float64))
    # The centre pixel of an odd-sized image sees the point the camera looks at.
    centre = rays_o[:, 3, 4] + torch.linalg.vector_norm(poses[:, :3, 3], dim=-1, keepdim=True) * unit[:, 3, 4]
    torch.testing.assert_close(centre, torch.zeros(2, 3, dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"pose": torch.eye(3)}, ValueError, r"pose must be \[4, 4\] or \[N, 4, 4\]"),
        ({"pose": torch.eye(4, dtype=torch.long)}, TypeError, "pose must be a floating-point"),
        ({"pose": torch.full((4, 4), math.nan)}, ValueError, "pose must be finite"),
        ({"height": 0}, ValueError, "height must be >= 1"),
        ({"width": 2.5}, TypeError, "width must be an int"),
        ({"focal": 0.0}, ValueError, "focal must be > 0"),
        ({"focal": math.inf}, ValueError, "focal must be finite"),
    ],
)
def test_get_rays_bad_input(kwargs, error, match):
    arguments = {"pose": torch.eye(4), "height": 4, "width": 4, "focal": 2.0} | kwargs
    with pytest.raises(error, match=match):
        get_rays(**arguments)


def test_look_at_builds_opengl_camera_to_world_rotations():
    eyes = torch.tensor([[0.0, -4.0, 1.0], [3.0, 2.0, -1.0], [0.1, 0.2, 5.0]], dtype=torch.float64)
    target = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)
    poses = look_at(eyes, target)
    assert poses.shape == (3, 4, 4) and poses.dtype == torch.float64
    _assert_rotations(poses, atol=1e-12)
    forward = -poses[:, :3, 2]
    expected = torch.nn.functional.normalize(target - eyes, dim=-1)
    torch.testing.assert_close(forward, expected)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    # The camera's x axis is level and its y axis leans up.
    torch.testing.assert_close(poses[:, :3, 0] @ up, torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert (poses[:, :3, 1] @ up > 0).all()
    torch.testing.assert_close(poses[:, :3, 3], eyes)
    assert look_at([0.0, -3.0, 0.0]).shape == (4, 4)


def test_look_at_bad_input():
    with pytest.raises(ValueError, match="eye must differ from target"):
        look_at([1.0, 2.0, 3.0], target=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="up must not be parallel"):
        look_at([0.0, 0.0, 4.0])
    with pytest.raises(ValueError, match=r"eye must be \[3\] or \[N, 3\]"):
        look_at(torch.zeros(2, 2))


# --------------------------------------------------------------------------------------------------
# Blender scenes: the offline lego copy


def test_nerf_synthetic_root_uses_the_data_root():
    root = _lego_root()
    assert root.name == "lego" and root.parent.name == "nerf_synthetic"
    assert (root / "transforms_train.json").is_file()


def test_nerf_synthetic_root_missing_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOKD_DATA", str(tmp_path))
    with pytest.raises(MissingDataError, match="nerf_synthetic.zip") as info:
        nerf_synthetic_root("lego")
    assert str(tmp_path / "nerf_synthetic" / "lego") in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ValueError, match="name must be a scene folder name"):
        nerf_synthetic_root("../lego")


def test_lego_holdout_splits(lego_train, lego_test):
    assert len(lego_train) == 87 and len(lego_test) == 13
    assert (lego_test.view_ids % 8 == 0).all() and (lego_train.view_ids % 8 != 0).all()
    union = torch.cat((lego_train.view_ids, lego_test.view_ids)).sort().values
    assert torch.equal(union, torch.arange(100))
    assert lego_train.split == "train" and lego_test.split == "test" and lego_train.name == "lego"


def test_lego_images_poses_and_camera(lego_train, lego_test):
    for scene in (lego_train, lego_test):
        assert scene.images.shape == (len(scene), 50, 50, 3) and scene.images.dtype == torch.float32
        assert scene.height == scene.width == 50
        assert scene.images.min() >= 0 and scene.images.max() <= 1
        assert scene.alphas.shape == (len(scene), 50, 50)
        # Lego sits on a white background: the corners are empty.
        corners = scene.images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
        assert (corners > 0.99).all()
        _assert_rotations(scene.poses)
        assert torch.equal(scene.aabb, torch.tensor(BLENDER_AABB)) and (scene.near, scene.far) == (2.0, 6.0)
        assert torch.equal(scene.background, torch.ones(3))
        # 0.5 * W / tan(0.5 * camera_angle_x) at the scaled width: 1/16 of the 800-pixel focal length.
        assert math.isclose(scene.focal, 0.5 * 800 / math.tan(0.5 * LEGO_CAMERA_ANGLE_X) * LEGO_SCALE, rel_tol=1e-12)
    # Some pixels show the model, not just the background.
    assert (lego_test.alphas > 0.5).float().mean() > 0.05


def test_lego_downscaling_averages_premultiplied_colour_then_composites():
    root = _lego_root()
    full = load_blender(root, split="test", max_views=1)
    small = load_blender(root, split="test", scale=0.125, max_views=1)
    assert full.images.shape == (1, 800, 800, 3) and small.images.shape == (1, 100, 100, 3)
    assert math.isclose(small.focal, full.focal / 8, rel_tol=1e-12)
    # Compositing is linear in (alpha * colour, alpha): averaging the composite is the same thing.
    torch.testing.assert_close(small.alphas, F.avg_pool2d(full.alphas[:, None], 8)[:, 0], atol=1e-5, rtol=0)
    expected = F.avg_pool2d(full.images.permute(0, 3, 1, 2), 8).permute(0, 2, 3, 1)
    torch.testing.assert_close(small.images, expected, atol=1e-5, rtol=0)


def test_lego_black_background_and_max_views():
    root = _lego_root()
    white = load_blender(root, split="train", scale=LEGO_SCALE, max_views=3)
    black = load_blender(root, split="train", scale=LEGO_SCALE, max_views=3, white_background=False)
    assert torch.equal(white.view_ids, torch.tensor([1, 2, 3])) and torch.equal(black.background, torch.zeros(3))
    assert (black.images[:, 0, 0] < 0.01).all()
    torch.testing.assert_close(white.images - black.images, (1 - white.alphas)[..., None].expand(-1, -1, -1, 3))


def test_official_test_split_reads_transforms_test(shared_data):
    root = shared_data / "nerf_synthetic" / "hotdog_tiny"
    if not (root / "transforms_test.json").is_file():
        pytest.skip("needs the offline hotdog_tiny scene")
    scene = load_blender(root, split="official_test", scale=0.25)
    assert scene.images.shape == (2, 50, 50, 3) and torch.equal(scene.view_ids, torch.arange(2))
    assert scene.split == "official_test"
    _assert_rotations(scene.poses)


# --------------------------------------------------------------------------------------------------
# Blender scenes: bad input, in folders written here


def _write_png(path, rgba):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgba, dtype=np.uint8), mode="RGBA").save(path)


def _write_scene(root, num_frames=3, size=4, transforms_name="transforms_train.json", **overrides):
    """A tiny valid scene folder: uniform half-transparent red images, cameras at distance 4."""
    frames = []
    for index in range(num_frames):
        rgba = np.zeros((size, size, 4), dtype=np.uint8)
        rgba[...] = (255, 0, 0, 51)
        _write_png(root / "train" / f"r_{index}.png", rgba)
        pose = look_at([4.0 * math.cos(index), 4.0 * math.sin(index), 1.0])
        frames.append({"file_path": f"./train/r_{index}", "transform_matrix": pose.tolist()})
    meta = {"camera_angle_x": 0.7, "frames": frames} | overrides
    (root / transforms_name).write_text(json.dumps(meta))
    return meta


def test_small_scene_composites_and_splits(tmp_path):
    _write_scene(tmp_path, num_frames=7)
    scene = load_blender(tmp_path, split="test", holdout_every=3)
    assert torch.equal(scene.view_ids, torch.tensor([0, 3, 6]))
    alpha = 51 / 255
    expected = torch.tensor([1.0, 1.0 - alpha, 1.0 - alpha])
    torch.testing.assert_close(scene.images, expected.expand(3, 4, 4, 3))
    black = load_blender(tmp_path, split="all", white_background=False)
    torch.testing.assert_close(black.images, torch.tensor([alpha, 0.0, 0.0]).expand(7, 4, 4, 3))
    assert math.isclose(scene.focal, 2.0 / math.tan(0.35), rel_tol=1e-12)


def test_file_paths_with_extension_are_accepted(tmp_path):
    meta = _write_scene(tmp_path)
    for frame in meta["frames"]:
        frame["file_path"] += ".png"
    (tmp_path / "transforms_train.json").write_text(json.dumps(meta))
    assert len(load_blender(tmp_path, split="all")) == 3


def _rewrite(root, edit):
    meta = json.loads((root / "transforms_train.json").read_text())
    edit(meta)
    (root / "transforms_train.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda meta: meta["frames"][1].pop("transform_matrix"), r"frames\[1\] has no 'transform_matrix'"),
        (lambda meta: meta["frames"][2].pop("file_path"), r"frames\[2\] has no 'file_path'"),
        (lambda meta: meta["frames"][0].update(transform_matrix=[[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "must be 4x4"),
        (lambda meta: meta["frames"][0].update(transform_matrix=[[1, 0], [0, 1, 0]]), "4x4 matrix of numbers"),
        (lambda meta: meta["frames"][0].update(transform_matrix="eye"), "4x4 matrix of numbers|must be 4x4"),
        (lambda meta: meta.pop("camera_angle_x"), "'camera_angle_x' must be a number"),
        (lambda meta: meta.update(frames=[]), "'frames' must be a non-empty list"),
        (lambda meta: meta["frames"].__setitem__(1, 7), r"frames\[1\] must be an object"),
    ],
)
def test_malformed_transforms(tmp_path, edit, match):
    _write_scene(tmp_path)
    _rewrite(tmp_path, edit)
    with pytest.raises(ValueError, match=match) as info:
        load_blender(tmp_path, split="all")
    assert "transforms_train.json" in str(info.value)


def test_malformed_json(tmp_path):
    (tmp_path / "transforms_train.json").write_text('{"camera_angle_x": 0.7, "frames": [')
    with pytest.raises(ValueError, match="transforms_train.json: malformed JSON"):
        load_blender(tmp_path)


def test_missing_folder_file_and_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_blender(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="transforms_train.json not found"):
        load_blender(tmp_path)
    _write_scene(tmp_path)
    with pytest.raises(FileNotFoundError, match="transforms_test.json not found"):
        load_blender(tmp_path, split="official_test")
    (tmp_path / "train" / "r_2.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"frames\[2\].file_path './train/r_2': image .*r_2.png not found"):
        load_blender(tmp_path, split="all")


def test_mismatched_and_unreadable_images(tmp_path):
    _write_scene(tmp_path)
    _write_png(tmp_path / "train" / "r_1.png", np.zeros((5, 4, 4)))
    with pytest.raises(ValueError, match=r"r_1.png: size 4x5 differs from .*r_0.png's 4x4"):
        load_blender(tmp_path, split="all")
    (tmp_path / "train" / "r_1.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="r_1.png: not a readable image"):
        load_blender(tmp_path, split="all")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"scale": 0.0}, ValueError, r"scale must be in \(0, 1\]"),
        ({"scale": -0.5}, ValueError, r"scale must be in \(0, 1\]"),
        ({"scale": 1.5}, ValueError, r"scale must be in \(0, 1\]"),
        ({"scale": 0.01}, ValueError, "below one pixel"),
        ({"holdout_every": 1}, ValueError, "holdout_every must be >= 2"),
        ({"split": "val"}, ValueError, "split must be one of"),
        ({"max_views": 0}, ValueError, "max_views must be >= 1"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    _write_scene(tmp_path)
    with pytest.raises(error, match=match):
        load_blender(tmp_path, **kwargs)


def test_empty_split(tmp_path):
    _write_scene(tmp_path, num_frames=1)
    with pytest.raises(ValueError, match="split 'train' is empty"):
        load_blender(tmp_path, split="train")


def test_scene_checks_its_fields():
    arguments = {
        "images": torch.zeros(2, 4, 4, 3),
        "poses": torch.eye(4).expand(2, 4, 4),
        "focal": 3.0,
        "aabb": torch.tensor([-1.0, -1, -1, 1, 1, 1]),
        "near": 1.0,
        "far": 5.0,
        "background": torch.ones(3),
    }
    scene = NerfScene(**arguments)
    assert torch.equal(scene.view_ids, torch.arange(2)) and (scene.height, scene.width) == (4, 4)
    for field, value, match in [
        ("poses", torch.eye(4).expand(3, 4, 4), r"poses must be \[2, 4, 4\]"),
        ("images", torch.zeros(2, 4, 4), r"images must be floating point \[N, H, W, 3\]"),
        ("aabb", torch.tensor([1.0, -1, -1, -1, 1, 1]), "min < max"),
        ("near", 6.0, "0 <= near < far"),
        ("focal", -1.0, "focal must be > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            NerfScene(**(arguments | {field: value}))


# --------------------------------------------------------------------------------------------------
# Procedural scene


def test_procedural_scene_is_deterministic_and_splits_consistently():
    kwargs = {"num_views": 10, "height": 12, "width": 12, "holdout_every": 4, "num_samples": 64}
    everything = procedural_scene(split="all", seed=3, **kwargs)
    again = procedural_scene(split="all", seed=3, **kwargs)
    other = procedural_scene(split="all", seed=4, **kwargs)
    assert torch.equal(everything.images, again.images) and torch.equal(everything.poses, again.poses)
    assert not torch.allclose(everything.poses, other.poses)
    test = procedural_scene(split="test", seed=3, **kwargs)
    train = procedural_scene(split="train", seed=3, **kwargs)
    assert torch.equal(test.view_ids, torch.tensor([0, 4, 8])) and len(train) == 7
    torch.testing.assert_close(test.images, everything.images[test.view_ids])
    torch.testing.assert_close(train.poses, everything.poses[train.view_ids])
    _assert_rotations(everything.poses)
    radii = torch.linalg.vector_norm(everything.poses[:, :3, 3], dim=-1)
    torch.testing.assert_close(radii, torch.full((10,), 4.0))
    assert everything.near == 2.0 and everything.far == 6.0 and everything.name == "procedural"
    assert everything.images.min() >= 0 and everything.images.max() <= 1
    # The objects fill part of every view and the border is background.
    assert ((everything.alphas > 0.5).flatten(1).float().mean(1) > 0.05).all()
    assert (everything.images[:, 0, 0] > 0.999).all()


def test_render_reference_converges():
    scene = ProceduralScene()
    poses = look_at(torch.tensor([[3.0, -2.0, 2.0], [-1.0, 3.5, 1.0]]))
    rays_o, rays_d = get_rays(poses, 24, 24, focal=30.0)
    renders = {n: scene.render_reference(rays_o, rays_d, 1.0, 7.0, num_samples=n).color for n in (32, 64, 256, 512)}
    coarse = (renders[32] - renders[64]).abs().max()
    fine = (renders[256] - renders[512]).abs().max()
    assert fine < 1e-3 and fine < coarse / 4
    assert renders[512].shape == (2, 24, 24, 3)


def test_render_reference_misses_keep_the_background():
    scene = ProceduralScene()
    rays_o = torch.tensor([[5.0, 5.0, 5.0], [-3.0, 0.0, 0.95], [0.0, -3.0, 0.9], [-0.3, -0.2, 3.0]])
    rays_d = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]])
    for background in (torch.ones(3), torch.tensor([0.0, 0.5, 1.0])):
        render = scene.render_reference(rays_o, rays_d, 0.0, 10.0, background=background)
        # Ray 0 misses the box, rays 1 and 2 cross it above every object.
        assert torch.equal(render.color[0], background) and render.opacity[0] == 0 and render.depth[0] == 0
        torch.testing.assert_close(render.color[1:3], background.expand(2, 3), atol=1e-4, rtol=0)
        assert (render.opacity[1:3] < 1e-4).all()
    # Ray 3 falls onto the top of the red ball (centre (-0.3, -0.2, -0.05), radius 0.4).
    assert render.opacity[3] > 0.999
    assert abs(render.depth[3] - (3.0 - 0.35)) < 0.05
    red = scene.sphere_colors[0] * scene._shade(rays_d[3:])
    torch.testing.assert_close(render.color[3], red, atol=0.02, rtol=0)


def test_procedural_density_and_color():
    scene = ProceduralScene()
    generator = torch.Generator().manual_seed(0)
    on_box = torch.rand(4000, 3, generator=generator) * 2 - 1
    on_box[torch.arange(4000), torch.randint(3, (4000,), generator=generator)] = 1.0
    on_box *= torch.where(torch.rand(4000, 1, generator=generator) < 0.5, -1.0, 1.0)
    # Negligible density on the scene box, so that clipping rays to it loses nothing.
    assert scene.density(on_box).max() < 1e-3
    assert math.isclose(scene.density(scene.sphere_centers[:1]).item(), scene.peak_density, rel_tol=1e-3)
    points = torch.rand(500, 3, generator=generator) * 2 - 1
    directions = torch.randn(500, 3, generator=generator)
    colors = scene.color(points, directions)
    assert colors.shape == (500, 3) and colors.min() >= 0 and colors.max() <= 1
    # Weak view dependence: the opposite view changes the colour by at most view_dependence.
    ratio = scene.color(points, -directions).sum(-1) / colors.sum(-1)
    assert (ratio >= 1 - scene.view_dependence - 1e-6).all() and (ratio <= 1 / (1 - scene.view_dependence) + 1e-6).all()
    assert (ratio - 1).abs().max() > 0.01
    torch.testing.assert_close(scene.color(points, 3 * directions), colors)


def test_procedural_bad_input():
    with pytest.raises(ValueError, match="radius must be > 2"):
        procedural_scene(radius=1.5)
    with pytest.raises(ValueError, match="split must be one of"):
        procedural_scene(split="official_test")
    with pytest.raises(ValueError, match="split 'train' of 1 views with holdout_every=8 is empty"):
        procedural_scene(num_views=1, split="train")
    scene = ProceduralScene()
    with pytest.raises(ValueError, match=r"rays_o and rays_d must be floating point \[\*, 3\]"):
        scene.render_reference(torch.zeros(4, 3), torch.zeros(4, 2), 0.0, 1.0)
    with pytest.raises(ValueError, match="rays_d must be non-zero"):
        scene.render_reference(torch.zeros(4, 3), torch.zeros(4, 3), 0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= near < far"):
        scene.render_reference(torch.zeros(4, 3), torch.ones(4, 3), 2.0, 1.0)
    with pytest.raises(ValueError, match=r"x must be floating point \[M, 3\]"):
        scene.density(torch.zeros(3))
    with pytest.raises(ValueError, match="view_dependence must be in"):
        ProceduralScene(view_dependence=2.0)


# --------------------------------------------------------------------------------------------------
# Ray sampler


@pytest.fixture(scope="module")
def small_scene():
    return procedural_scene(num_views=4, height=6, width=5, split="all", num_samples=32)


def test_sampler_batches_match_the_images(small_scene):
    sampler = RaySampler(small_scene, batch_size=64, seed=1)
    assert sampler.num_rays == 4 * 6 * 5
    batch = sampler.sample()
    assert len(batch) == 64 and batch.colors.shape == (64, 3) and batch.indices.dtype == torch.long
    torch.testing.assert_close(batch.colors, small_scene.images.reshape(-1, 3)[batch.indices])
    rays_o, rays_d = small_scene.rays()
    torch.testing.assert_close(batch.rays_o, rays_o.reshape(-1, 3)[batch.indices])
    torch.testing.assert_close(batch.rays_d, rays_d.reshape(-1, 3)[batch.indices])
    torch.testing.assert_close(torch.linalg.vector_norm(batch.rays_d, dim=-1), torch.ones(64))


def test_sampler_is_deterministic_by_seed(small_scene):
    first = [RaySampler(small_scene, batch_size=32, seed=5).sample().indices for _ in range(2)]
    assert torch.equal(first[0], first[1])
    other = RaySampler(small_scene, batch_size=32, seed=6).sample().indices
    assert not torch.equal(first[0], other)


def test_sampler_resumes_exactly(small_scene):
    sampler = RaySampler(small_scene, batch_size=16, seed=2)
    for _ in range(3):
        sampler.sample()
    buffer = io.BytesIO()
    torch.save(sampler.state_dict(), buffer)
    expected = [sampler.sample().indices for _ in range(3)]
    resumed = RaySampler(small_scene, batch_size=16, seed=99)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer))
    assert resumed.num_batches == 3 and resumed.seed == 2
    for indices in expected:
        assert torch.equal(resumed.sample().indices, indices)
    with pytest.raises(ValueError, match="batch_size=16, this sampler has 8"):
        RaySampler(small_scene, batch_size=8).load_state_dict(sampler.state_dict())
    with pytest.raises(ValueError, match="saved for a sampler over 120 rays"):
        RaySampler(procedural_scene(num_views=2, height=2, width=2, split="all"), batch_size=16).load_state_dict(
            sampler.state_dict()
        )
    with pytest.raises(ValueError, match="lacks generator_state"):
        sampler.load_state_dict({})


def test_sampler_view_chunks_cover_one_view_in_order(small_scene):
    sampler = RaySampler(small_scene, normalize=False)
    chunks = list(sampler.view_chunks(2, chunk_size=7))
    assert [len(chunk) for chunk in chunks] == [7, 7, 7, 7, 2]
    indices = torch.cat([chunk.indices for chunk in chunks])
    assert torch.equal(indices, torch.arange(60, 90))
    colors = torch.cat([chunk.colors for chunk in chunks]).reshape(6, 5, 3)
    assert torch.equal(colors, small_scene.images[2])
    _, raw = get_rays(small_scene.poses[2], 6, 5, small_scene.focal, normalize=False)
    torch.testing.assert_close(torch.cat([chunk.rays_d for chunk in chunks]), raw.reshape(-1, 3))
    with pytest.raises(ValueError, match="view must be < 4"):
        next(sampler.view_chunks(4))
    with pytest.raises(TypeError, match="scene must be a NerfScene"):
        RaySampler(small_scene.images)
