import math

import pytest
import torch
import torch.nn.functional as F

from pointkd.nerf.encoding import PositionalEncoding, SphericalHarmonicsEncoding, spherical_harmonics
from pointkd.nerf.fields import (
    FIELDS,
    GridField,
    HashField,
    VMField,
    build_field,
    load_field,
    save_field,
    trunc_exp,
)
from pointkd.ops.hash_grid import HashGridConfig, _hash_grid_encode_reference

AABB = [-1.0, -2.0, -1.5, 1.0, 2.0, 1.5]
SMALL = {
    "mlp": {"width": 32, "depth": 4, "position_frequencies": 4},
    "grid": {"resolution": 8, "feature_dim": 4, "hidden_dim": 16},
    "vm": {"resolution": 8, "density_components": 3, "appearance_components": 4, "feature_dim": 6, "hidden_dim": 16},
    "hash": {
        "config": HashGridConfig(num_levels=4, log2_table_size=10, base_resolution=4, finest_resolution=32),
        "hidden_dim": 16,
    },
}


def small_field(kind: str, **overrides):
    torch.manual_seed(0)
    return build_field(kind, AABB, **{**SMALL[kind], **overrides})


def inside_points(count: int = 200, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    low, high = torch.tensor(AABB[:3]), torch.tensor(AABB[3:])
    return low + (high - low) * torch.rand(count, 3, generator=generator)


# -- encodings ----------------------------------------------------------------------
def test_positional_encoding_formula():
    encoding = PositionalEncoding(3)
    x = torch.randn(5, 3)
    out = encoding(x)
    assert out.shape == (5, encoding.output_dim) == (5, 21)
    # Layout: [x, sin(2^k x) for k (x, y, z inner), cos(2^k x) for k].
    expected = [x]
    for part in (torch.sin, torch.cos):
        expected.append(torch.cat([part(2.0**k * x) for k in range(3)], dim=-1))
    torch.testing.assert_close(out, torch.cat(expected, dim=-1))
    with pytest.raises(ValueError, match="x must have 3 coordinates"):
        encoding(torch.randn(5, 2))


def _sphere_quadrature(n_theta: int = 64, n_phi: int = 128):
    # Gauss-Legendre in cos(theta) times uniform in phi: exact for the
    # polynomials of degree < 2 n_theta that products of harmonics are.
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(n_theta)
    phi = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
    cos_theta, phi_grid = np.meshgrid(nodes, phi, indexing="ij")
    sin_theta = np.sqrt(1 - cos_theta**2)
    directions = np.stack([sin_theta * np.cos(phi_grid), sin_theta * np.sin(phi_grid), cos_theta], -1).reshape(-1, 3)
    quad_weights = (weights[:, None] * np.full(n_phi, 2 * np.pi / n_phi)[None, :]).reshape(-1)
    return (
        torch.from_numpy(directions),
        torch.from_numpy(quad_weights),
        np.arccos(cos_theta).reshape(-1),
        phi_grid.reshape(-1),
    )


def test_spherical_harmonics_orthonormal_and_match_scipy():
    scipy_special = pytest.importorskip("scipy.special")
    directions, weights, theta, phi = _sphere_quadrature()
    basis = spherical_harmonics(directions, 5)
    gram = basis.T @ (basis * weights[:, None])
    torch.testing.assert_close(gram, torch.eye(25, dtype=gram.dtype), atol=1e-10, rtol=0)
    for degree in range(5):
        # scipy's complex harmonics of this band, as real functions (real and
        # imaginary parts span the real harmonics of the band).
        if hasattr(scipy_special, "sph_harm_y"):
            values = [scipy_special.sph_harm_y(degree, order, theta, phi) for order in range(degree + 1)]
        else:
            values = [scipy_special.sph_harm(order, degree, phi, theta) for order in range(degree + 1)]
        reference = [torch.from_numpy(v.real) for v in values] + [torch.from_numpy(v.imag) for v in values[1:]]
        reference = torch.stack(reference, dim=-1)
        ours = basis[:, degree**2 : (degree + 1) ** 2]
        # The band spans the same space: projecting scipy's functions on ours loses nothing.
        coefficients = ours.T @ (reference * weights[:, None])
        torch.testing.assert_close(ours @ coefficients, reference, atol=1e-8, rtol=0)


def test_spherical_harmonics_encoding_normalises_and_checks():
    encoding = SphericalHarmonicsEncoding(4)
    d = torch.randn(10, 3)
    torch.testing.assert_close(encoding(d * 7.0), spherical_harmonics(F.normalize(d, dim=-1), 4))
    with pytest.raises(ValueError, match="degree must be in"):
        SphericalHarmonicsEncoding(6)
    with pytest.raises(ValueError, match="directions must have shape"):
        spherical_harmonics(torch.randn(4, 2), 2)


def test_trunc_exp_gradient_is_clamped():
    x = torch.tensor([0.0, 20.0], requires_grad=True)
    trunc_exp(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([1.0, math.exp(15.0)]))


# -- the shared interface -----------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_interface(kind):
    field = small_field(kind)
    x = inside_points()
    d = torch.randn_like(x)
    sigma, rgb = field(x, d)
    assert sigma.shape == (200,) and rgb.shape == (200, 3)
    assert (sigma >= 0).all() and (rgb >= 0).all() and (rgb <= 1).all()
    torch.testing.assert_close(field.density(x), sigma)
    torch.testing.assert_close(field.color(x, d), rgb)
    assert field.features(x).shape == (200, field.feature_dim)
    # Direction length does not matter.
    torch.testing.assert_close(field(x, 3.0 * d)[1], rgb)
    # Outside the box: no density.
    outside = x + torch.tensor([5.0, 0.0, 0.0])
    assert (field.density(outside) == 0).all()
    # Every parameter receives a gradient.
    (sigma.sum() + rgb.sum()).backward()
    missing = [name for name, parameter in field.named_parameters() if parameter.grad is None]
    assert not missing, missing
    with pytest.raises(ValueError, match="x must have shape"):
        field.density(torch.randn(4, 2))
    with pytest.raises(ValueError, match="directions must have the shape"):
        field(x, d[:3])


@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_save_load_roundtrip(kind, tmp_path):
    field = small_field(kind)
    x, d = inside_points(), torch.randn(200, 3)
    path = tmp_path / f"{kind}.pt"
    save_field(field, path, {"note": "roundtrip"})
    loaded, metadata = load_field(path)
    assert type(loaded) is type(field) and metadata == {"note": "roundtrip"}
    for ours, theirs in zip(field(x, d), loaded(x, d)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_load_field_rejects_other_files(tmp_path):
    from geokd.checkpoint import save_checkpoint

    path = tmp_path / "other.pt"
    save_checkpoint({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a radiance field"):
        load_field(path)
    field = small_field("mlp")
    save_field(field, path)
    state = torch.load(path, weights_only=False)
    state["state"]["version"] = 99
    torch.save(state, path)
    with pytest.raises(ValueError, match="upgrade geokd"):
        load_field(path)
    with pytest.raises(FileNotFoundError):
        load_field(tmp_path / "missing.pt")


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        build_field("nope", AABB)
    with pytest.raises(ValueError, match="aabb must be 6 finite values"):
        build_field("mlp", [0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="aabb must be 6 finite values"):
        build_field("mlp", [0, 0, 0, 1, -1, 1])
    with pytest.raises(ValueError, match="color_mode"):
        GridField(AABB, color_mode="rgb")


# -- each architecture against an independent computation ---------------------------------
def test_grid_field_matches_grid_sample_and_sh_colour():
    field = small_field("grid", color_mode="sh", sh_degree=2)
    with torch.no_grad():
        field.volume.normal_()
    x = inside_points()
    x01 = field.normalize(x)
    sampled = F.grid_sample(field.volume[None], (x01 * 2 - 1).view(1, -1, 1, 1, 3), align_corners=True)
    sampled = sampled.view(field.volume.shape[0], -1).T
    torch.testing.assert_close(
        field.density(x), field.density_scale * F.softplus(sampled[:, 0] + field.density_shift), atol=1e-5, rtol=1e-5
    )
    d = F.normalize(torch.randn(200, 3), dim=-1)
    basis = spherical_harmonics(d, 2)
    expected = torch.sigmoid(torch.einsum("mck,mk->mc", sampled[:, 1:].view(-1, 3, 4), basis))
    torch.testing.assert_close(field.color(x, d), expected, atol=1e-5, rtol=1e-5)


def test_vm_field_matches_dense_tensor():
    field = small_field("vm")
    resolution = field.resolution
    # Densities at the grid vertices, from the factors written out as a dense tensor.
    planes = [plane[0] for plane in field.density_planes]  # (R, res, res): [component, a, b]
    lines = [line[0, :, :, 0] for line in field.density_lines]  # (R, res)
    dense = (
        torch.einsum("rxy,rz->xyz", planes[0], lines[0])
        + torch.einsum("rxz,ry->xyz", planes[1], lines[1])
        + torch.einsum("ryz,rx->xyz", planes[2], lines[2])
    )
    index = torch.randint(0, resolution, (50, 3), generator=torch.Generator().manual_seed(1))
    x01 = index.float() / (resolution - 1)
    low, high = field.aabb[:3], field.aabb[3:]
    x = low + x01 * (high - low)
    expected = field.density_scale * F.softplus(dense[index[:, 0], index[:, 1], index[:, 2]] + field.density_shift)
    torch.testing.assert_close(field.density(x), expected, atol=1e-5, rtol=1e-5)


def test_hash_field_matches_reference_encoding():
    field = small_field("hash")
    with torch.no_grad():
        field.encoding.embeddings.normal_()
    x = inside_points()
    encoded = _hash_grid_encode_reference(field.normalize(x), field.encoding.embeddings, field.encoding.config)
    out = field.density_net(encoded)
    torch.testing.assert_close(field.density(x), torch.exp(out[:, 0]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(field.features(x), out[:, 1:], atol=1e-5, rtol=1e-4)


def test_hash_field_accepts_config_dict():
    field = HashField(
        AABB, config={"num_levels": 2, "log2_table_size": 8, "base_resolution": 4, "finest_resolution": 8}
    )
    assert field.encoding.config.num_levels == 2


def test_vm_field_bad_resolution():
    with pytest.raises(ValueError, match="resolution must be >= 2"):
        VMField(AABB, resolution=1)


def test_grid_upsample_preserves_a_linear_field():
    field = small_field("grid", resolution=5)
    axis = torch.linspace(-1, 1, 5)
    z, y, x = torch.meshgrid(axis, axis, axis, indexing="ij")
    with torch.no_grad():
        for channel in range(field.volume.shape[0]):
            field.volume[channel] = 0.3 * x - 0.2 * y + 0.1 * z + channel
    points = inside_points()
    before_density, before_features = field.density(points), field.features(points)
    field.upsample(9)
    assert field.resolution == 9 and field.config()["resolution"] == 9
    assert field.config()["density_scale"] == small_field("grid", resolution=5).density_scale
    # Trilinear interpolation reproduces a linear function exactly, at any resolution.
    torch.testing.assert_close(field.features(points), before_features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(field.density(points), before_density, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_non_finite_points_raise(kind):
    field = small_field(kind)
    x = inside_points(4)
    x[2, 1] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        field.density(x)
    with pytest.raises(ValueError, match="x must be finite"):
        field(x.clamp(max=float("inf")) + torch.tensor([float("inf"), 0, 0]), torch.ones(4, 3))
