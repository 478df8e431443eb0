"""Tests of per-lesion transforms: parameter sampling and the deterministic apply step."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_lesionmix.core.recipe import PopulateOptions
from napari_lesionmix.core.transforms import (
    LesionParams,
    affine_matrix,
    augment,
    sample_params,
)

MARGIN = 3


# ---------------------------------------------------------------- fixtures / helpers
def ellipsoid(radii, margin=MARGIN, centre_offset=None):
    """Bool mask of an ellipsoid (radii in voxels) in a patch with ``margin`` voxels of
    context on every side of its bounding box."""
    radii = np.asarray(radii, dtype=float)
    half = np.ceil(radii).astype(int)
    shape = tuple(2 * half + 1)
    grids = np.meshgrid(*[np.arange(n) - h for n, h in zip(shape, half, strict=True)], indexing="ij")
    if centre_offset is not None:
        grids = [g - o for g, o in zip(grids, centre_offset, strict=True)]
    inside = sum((g / r) ** 2 for g, r in zip(grids, radii, strict=True)) <= 1.0
    if not inside.any():  # tiny radii with an offset centre: keep one voxel
        inside[tuple(half)] = True
    # crop to its tight bbox, then pad with the margin
    idx = np.argwhere(inside)
    sl = tuple(slice(a, b + 1) for a, b in zip(idx.min(0), idx.max(0), strict=True))
    return np.pad(inside[sl], margin)


def image_for(mask, n_channels=2, seed=0):
    """A textured image patch: lesion brighter than its context, smooth gradients, noise."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, n) for n in mask.shape], indexing="ij")
    base = sum((k + 1) * g for k, g in enumerate(grids))
    chans = [base * (c + 1) + 3.0 * mask + 0.1 * rng.standard_normal(mask.shape)
             for c in range(n_channels)]
    return np.stack(chans).astype(np.float32)


def with_(ndim, **kw):
    return replace(LesionParams.identity(ndim), **kw)


def principal_axis(mask):
    pts = np.argwhere(mask).astype(float)
    pts -= pts.mean(0)
    w, v = np.linalg.eigh(pts.T @ pts)
    return v[:, np.argmax(w)]


def bbox_margins(mask):
    """Per axis: (voxels before the mask, voxels after it)."""
    idx = np.argwhere(mask)
    return [(int(lo), int(n - 1 - hi)) for lo, hi, n in zip(idx.min(0), idx.max(0), mask.shape, strict=True)]


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def blob(request):
    ndim = request.param
    radii = (6, 4) if ndim == 2 else (5, 4, 3)
    mask = ellipsoid(radii)
    return ndim, image_for(mask), mask


ALL_ON = PopulateOptions(flip_p=1, rotate_p=1, scale_p=1, elastic_p=1, brightness_p=1,
                         noise_p=1)
ALL_OFF = PopulateOptions(flip_p=0, rotate_p=0, scale_p=0, elastic_p=0, brightness_p=0,
                          noise_p=0)


# ---------------------------------------------------------------- params
def test_identity_and_json_round_trip():
    for ndim in (2, 3):
        p = sample_params(np.random.default_rng(3), ALL_ON, ndim)
        d = json.loads(json.dumps(p.to_dict()))
        assert isinstance(d["flip"], list) and isinstance(d["rotate"], list)
        q = LesionParams.from_dict(d)
        assert q == p
        assert isinstance(q.flip, tuple) and isinstance(q.rotate, tuple)
    ident = LesionParams.identity(3)
    assert ident.flip == (False,) * 3 and ident.rotate == (0.0,) * 3
    assert LesionParams.identity(2).rotate == (0.0,)
    np.testing.assert_array_equal(affine_matrix(ident), np.eye(3))


def test_from_dict_names_bad_fields():
    d = LesionParams.identity(2).to_dict()
    with pytest.raises(ValueError, match="unknown field.*bogus"):
        LesionParams.from_dict({**d, "bogus": 1})
    d2 = dict(d)
    del d2["scale"]
    with pytest.raises(ValueError, match="missing field.*scale"):
        LesionParams.from_dict(d2)
    with pytest.raises(ValueError, match="rotate"):
        LesionParams.from_dict({**d, "rotate": [1.0, 2.0]})


def test_same_seed_same_params_different_seed_different():
    opts = PopulateOptions()
    for ndim in (2, 3):
        a = sample_params(np.random.default_rng(42), opts, ndim)
        b = sample_params(np.random.default_rng(42), opts, ndim)
        c = sample_params(np.random.default_rng(43), opts, ndim)
        assert a == b
        assert a != c
        assert len(a.flip) == ndim and len(a.rotate) == (1 if ndim == 2 else 3)


def test_number_of_draws_does_not_depend_on_outcomes():
    """The stream after sample_params is the same whether transforms are on or off."""
    for ndim in (2, 3):
        after = []
        for opts in (ALL_ON, ALL_OFF, PopulateOptions()):
            rng = np.random.default_rng(7)
            sample_params(rng, opts, ndim)
            after.append(rng.random())
        assert after[0] == after[1] == after[2]


def test_all_off_is_identity_except_seeds():
    p = sample_params(np.random.default_rng(0), ALL_OFF, 3)
    ident = LesionParams.identity(3)
    assert replace(p, elastic_seed=0, noise_seed=0) == ident


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32), ndim=st.sampled_from([2, 3]))
def test_sampled_values_in_ranges(seed, ndim):
    o = ALL_ON
    p = sample_params(np.random.default_rng(seed), o, ndim)
    assert all(p.flip)
    for a in p.rotate:
        assert o.rotate_deg[0] <= abs(a) <= o.rotate_deg[1]
    assert o.scale[0] <= p.scale <= o.scale[1]
    assert o.elastic_sigma[0] <= p.elastic_sigma <= o.elastic_sigma[1]
    assert p.elastic_magnitude == o.elastic_magnitude
    assert o.brightness[0] <= p.brightness <= o.brightness[1]
    assert o.noise_std[0] <= p.noise_std <= o.noise_std[1]
    assert 0 <= p.elastic_seed < 2**63 and 0 <= p.noise_seed < 2**63


def test_probabilities_are_respected():
    opts = PopulateOptions(flip_p=0.5, rotate_p=0.25)
    rng = np.random.default_rng(0)
    ps = [sample_params(rng, opts, 3) for _ in range(2000)]
    flips = np.array([p.flip for p in ps], dtype=float)
    rots = np.array([[a != 0 for a in p.rotate] for p in ps], dtype=float)
    signs = np.array([a < 0 for p in ps for a in p.rotate if a != 0], dtype=float)
    np.testing.assert_allclose(flips.mean(0), 0.5, atol=0.05)
    np.testing.assert_allclose(rots.mean(0), 0.25, atol=0.05)
    assert abs(signs.mean() - 0.5) < 0.06
    elastic = np.mean([p.elastic_sigma > 0 for p in ps])
    assert abs(elastic - 0.5) < 0.05


# ---------------------------------------------------------------- spatial
def test_identity_gives_back_mask_and_image(blob):
    ndim, image, mask = blob
    for interp in ("linear", "cubic"):
        out_img, out_mask = augment(image, mask, LesionParams.identity(ndim), interp)
        assert out_mask.dtype == bool and out_img.dtype == np.float32
        np.testing.assert_array_equal(out_mask, mask)
        np.testing.assert_allclose(out_img, image, atol=1e-4)


def test_flip_flips(blob):
    ndim, image, mask = blob
    # an asymmetric mask (a hole off the centre, bbox unchanged) so that a flip is visible
    mask = mask.copy()
    hole = tuple(n // 2 + 1 for n in mask.shape)
    assert mask[hole]
    mask[hole] = False
    for k in range(ndim):
        flip = tuple(j == k for j in range(ndim))
        out_img, out_mask = augment(image, mask, with_(ndim, flip=flip))
        np.testing.assert_array_equal(out_mask, np.flip(mask, k))
        np.testing.assert_allclose(out_img, np.flip(image, k + 1), atol=1e-5)
        assert not np.array_equal(out_mask, mask)
    out_img, out_mask = augment(image, mask, with_(ndim, flip=(True,) * ndim))
    np.testing.assert_array_equal(out_mask, np.flip(mask))
    np.testing.assert_allclose(out_img, np.flip(image, tuple(range(1, ndim + 1))), atol=1e-5)


@pytest.mark.parametrize("ndim,factor,expected", [(3, 2.0, 8.0), (2, 2.0, 4.0),
                                                  (3, 0.5, 1 / 8), (2, 0.5, 1 / 4)])
def test_resize_changes_volume(ndim, factor, expected):
    radii = (8, 7, 6)[:ndim] if ndim == 3 else (8, 7)
    mask = ellipsoid(radii)
    image = image_for(mask, 1)
    _, out_mask = augment(image, mask, with_(ndim, scale=factor))
    ratio = out_mask.sum() / mask.sum()
    assert ratio == pytest.approx(expected, rel=0.15)
    # the shape changed accordingly (not just padded)
    ext_in = np.ptp(np.argwhere(mask), axis=0) + 1
    ext_out = np.ptp(np.argwhere(out_mask), axis=0) + 1
    np.testing.assert_allclose(ext_out / ext_in, factor, rtol=0.2)


def test_rotation_moves_principal_axis_2d():
    mask = ellipsoid((2, 8))  # long along axis 1
    image = image_for(mask, 1)
    assert abs(principal_axis(mask)[1]) > 0.99
    _, out = augment(image, mask, with_(2, rotate=(85.0,)))
    ax = principal_axis(out)
    assert abs(ax[0]) > 0.95  # now mostly along axis 0
    _, out = augment(image, mask, with_(2, rotate=(45.0,)))
    ax = principal_axis(out)
    assert abs(abs(ax[0]) - abs(ax[1])) < 0.15  # diagonal
    assert abs(out.sum() / mask.sum() - 1) < 0.15


@pytest.mark.parametrize("about,src,dst", [(0, 2, 1), (1, 2, 0), (2, 1, 0)])
def test_rotation_about_each_axis_3d(about, src, dst):
    radii = [2, 2, 2]
    radii[src] = 8
    mask = ellipsoid(radii)
    image = image_for(mask, 1)
    angles = [0.0, 0.0, 0.0]
    angles[about] = 88.0
    _, out = augment(image, mask, with_(3, rotate=tuple(angles)))
    assert abs(principal_axis(out)[dst]) > 0.95
    assert abs(out.sum() / mask.sum() - 1) < 0.15


def test_rotation_sign_and_convention_2d():
    """A positive angle maps axis 1 onto +axis 0 (matrix [[c, -s], [s, c]] on (0, 1))."""
    a = affine_matrix(with_(2, rotate=(90.0,)))
    np.testing.assert_allclose(a @ np.array([0.0, 1.0]), [-1.0, 0.0], atol=1e-12)
    a = affine_matrix(with_(3, rotate=(90.0, 0.0, 0.0)))
    np.testing.assert_allclose(a @ np.array([0.0, 0.0, 1.0]), [0.0, -1.0, 0.0], atol=1e-12)


def test_elastic_changes_shape_keeps_volume_and_is_deterministic(blob):
    ndim, image, mask = blob
    mask = ellipsoid((9, 8) if ndim == 2 else (7, 6, 6))
    image = image_for(mask)
    p = with_(ndim, elastic_sigma=4.0, elastic_magnitude=2.0, elastic_seed=123)
    img1, m1 = augment(image, mask, p)
    img2, m2 = augment(image, mask, p)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(img1, img2)
    assert m1.shape != mask.shape or not np.array_equal(m1, mask)
    assert abs(m1.sum() / mask.sum() - 1) < 0.25
    _, m3 = augment(image, mask, replace(p, elastic_seed=124))
    assert m3.shape != m1.shape or not np.array_equal(m3, m1)


def test_elastic_displacement_is_bounded():
    """No mask voxel moves further than the magnitude (plus interpolation slack)."""
    from scipy import ndimage as ndi

    mask = ellipsoid((7, 6, 6))
    image = image_for(mask, 1)
    p = with_(3, elastic_sigma=3.0, elastic_magnitude=2.0, elastic_seed=5)
    _, out = augment(image, mask, p)
    # same margin on both, centroid fixed: compare after aligning the patches on centres
    dist_in = ndi.distance_transform_edt(~mask)
    assert np.ptp(np.argwhere(out), axis=0).max() <= np.ptp(np.argwhere(mask), axis=0).max() + 5
    assert dist_in.max() > 0  # sanity


@pytest.mark.parametrize("seed", range(8))
def test_output_holds_the_whole_mask_with_margin(seed):
    """Random params: the output keeps exactly ``margin`` voxels around the mask, and
    does not depend on how much context the input patch had (nothing was cut off)."""
    rng = np.random.default_rng(seed)
    ndim = 2 + seed % 2
    radii = rng.uniform(2, 7, ndim)
    mask = ellipsoid(radii)
    image = image_for(mask, 1, seed)
    p = sample_params(rng, ALL_ON, ndim)
    img1, m1 = augment(image, mask, p)
    assert m1.any()
    for before, after in bbox_margins(m1):
        assert before == MARGIN and after == MARGIN
    # extra context around the input: identical result (same explicit margin)
    pad = 9
    big_mask = np.pad(mask, pad)
    big_img = np.pad(image, [(0, 0)] + [(pad, pad)] * ndim, mode="edge")
    img2, m2 = augment(big_img, big_mask, p, margin=MARGIN)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_allclose(img1, img2, atol=1e-4)


def test_margin_zero_and_explicit_margin():
    mask = ellipsoid((4, 5), margin=0)
    image = image_for(mask, 1)
    _, m = augment(image, mask, with_(2, scale=1.5))
    assert all(b == 0 and a == 0 for b, a in bbox_margins(m))
    _, m = augment(image, mask, with_(2, scale=1.5), margin=4)
    assert all(b == 4 and a == 4 for b, a in bbox_margins(m))


def test_cubic_interpolation(blob):
    ndim, image, mask = blob
    p = with_(ndim, scale=1.4, rotate=(30.0,) * (1 if ndim == 2 else 3))
    lin_img, lin_mask = augment(image, mask, p, "linear")
    cub_img, cub_mask = augment(image, mask, p, "cubic")
    np.testing.assert_array_equal(lin_mask, cub_mask)  # the mask is always linear
    assert cub_img.dtype == np.float32 and np.isfinite(cub_img).all()
    assert not np.array_equal(lin_img, cub_img)
    assert np.abs(lin_img - cub_img).mean() < 0.05 * np.ptp(image)
    assert cub_img.min() >= image.min() - 1e-5 and cub_img.max() <= image.max() + 1e-5


def test_anisotropic_rotation_is_physical():
    """A physical sphere on a (3, 1, 1) mm grid stays a sphere when rotated with spacing;
    rotated in index space it would be badly distorted."""
    spacing = (3.0, 1.0, 1.0)
    mask = ellipsoid((3, 9, 9))  # radius 9 mm in every direction
    image = image_for(mask, 1)
    p = with_(3, rotate=(0.0, 40.0, 0.0))  # about axis 1: mixes z and x
    _, phys = augment(image, mask, p, spacing=spacing)
    _, naive = augment(image, mask, p)
    ext_in = np.ptp(np.argwhere(mask), axis=0) + 1
    ext_phys = np.ptp(np.argwhere(phys), axis=0) + 1
    ext_naive = np.ptp(np.argwhere(naive), axis=0) + 1
    assert abs(phys.sum() / mask.sum() - 1) < 0.1  # physical volume kept
    np.testing.assert_allclose(ext_phys, ext_in, atol=2)
    assert ext_naive[0] > ext_in[0] + 4  # the naive rotation smears the sphere along z
    # the physical matrix is S^-1 R S
    a = affine_matrix(p, spacing)
    s = np.diag(spacing)
    np.testing.assert_allclose(a, np.linalg.inv(s) @ affine_matrix(p) @ s)
    assert abs(np.linalg.det(a) - 1) < 1e-12


# ---------------------------------------------------------------- intensity
def test_brightness_scales_the_mean(blob):
    ndim, image, mask = blob
    ref, _ = augment(image, mask, LesionParams.identity(ndim))
    out, _ = augment(image, mask, with_(ndim, brightness=1.1))
    np.testing.assert_allclose(out.mean(axis=tuple(range(1, ndim + 1))),
                               1.1 * ref.mean(axis=tuple(range(1, ndim + 1))), rtol=1e-5)


def test_noise_std_matches_request():
    mask = ellipsoid((12, 12, 12))
    image = np.ones((2,) + mask.shape, np.float32)
    p = with_(3, noise_std=0.3, noise_seed=9)
    out, _ = augment(image, mask, p)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 0.3, rtol=0.05)
    stats = np.array([[0.0, 2.0], [5.0, 10.0]])
    out, _ = augment(image, mask, p, stats=stats)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), [0.6, 3.0], rtol=0.05)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 1.0, atol=0.05)
    again, _ = augment(image, mask, p, stats=stats)
    np.testing.assert_array_equal(out, again)
    other, _ = augment(image, mask, replace(p, noise_seed=10), stats=stats)
    assert not np.array_equal(out, other)


# ---------------------------------------------------------------- edge cases and errors
def test_empty_mask_returns_small_empty_result():
    for ndim in (2, 3):
        mask = np.zeros((5,) * ndim, bool)
        img, m = augment(np.ones((2,) + mask.shape, np.float32), mask,
                         LesionParams.identity(ndim))
        assert m.shape == (1,) * ndim and not m.any()
        assert img.shape == (2,) + (1,) * ndim and img.dtype == np.float32


def test_single_voxel_lesion_survives_shrinking():
    mask = np.zeros((7, 7, 7), bool)
    mask[3, 3, 3] = True
    _, m = augment(np.ones((1, 7, 7, 7), np.float32), mask, with_(3, scale=0.5))
    assert m.sum() >= 1  # the centroid is a fixed point of the map


def test_bad_inputs_raise():
    mask = ellipsoid((3, 3))
    image = image_for(mask, 1)
    with pytest.raises(ValueError, match="interpolation"):
        augment(image, mask, LesionParams.identity(2), "nearest")
    with pytest.raises(ValueError, match="image must be"):
        augment(image[0], mask, LesionParams.identity(2))
    with pytest.raises(ValueError, match="3D"):
        augment(image, mask, LesionParams.identity(3))
    with pytest.raises(ValueError, match="stats"):
        augment(image, mask, LesionParams.identity(2), stats=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="spacing"):
        augment(image, mask, LesionParams.identity(2), spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match="2D and 3D"):
        sample_params(np.random.default_rng(0), PopulateOptions(), 4)


# ---------------------------------------------------------------- property
@st.composite
def blob_and_params(draw):
    ndim = draw(st.sampled_from([2, 3]))
    radii = draw(st.lists(st.floats(0.5, 5.0), min_size=ndim, max_size=ndim))
    offset = draw(st.lists(st.floats(-0.5, 0.5), min_size=ndim, max_size=ndim))
    margin = draw(st.integers(0, 4))
    n_channels = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32))
    all_on = draw(st.booleans())
    interp = draw(st.sampled_from(["linear", "cubic"]))
    return ndim, radii, offset, margin, n_channels, seed, all_on, interp


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob_and_params())
def test_property_random_blobs_and_params(case):
    ndim, radii, offset, margin, n_channels, seed, all_on, interp = case
    mask = ellipsoid(radii, margin=margin, centre_offset=offset)
    rng = np.random.default_rng(seed)
    image = (rng.standard_normal((n_channels,) + mask.shape) * 10 + 50).astype(np.float32)
    stats = np.column_stack([np.full(n_channels, 50.0), np.full(n_channels, 10.0)])
    p = sample_params(rng, ALL_ON if all_on else PopulateOptions(), ndim)
    img, m = augment(image, mask, p, interp, stats)
    assert img.dtype == np.float32 and m.dtype == bool
    assert img.shape == (n_channels,) + m.shape
    assert m.ndim == ndim
    assert np.isfinite(img).all()
    if m.any():
        for before, after in bbox_margins(m):
            assert before == margin and after == margin
    else:
        assert m.shape == (1,) * ndim
    # deterministic given params
    img2, m2 = augment(image, mask, p, interp, stats)
    np.testing.assert_array_equal(m, m2)
    np.testing.assert_array_equal(img, img2)


# ---------------------------------------------------------------- timing (informative)
def test_timing_20_cube_patch(capsys):
    mask = ellipsoid((7, 6, 6))  # ~20^3 patch with the margin
    image = image_for(mask, 2)
    stats = np.array([[0.0, 1.0], [0.0, 1.0]])
    for elastic_p in (0.0, 1.0):
        opts = PopulateOptions(elastic_p=elastic_p)
        rng = np.random.default_rng(0)
        times = []
        for _ in range(60):
            t = time.perf_counter()
            augment(image, mask, sample_params(rng, opts, 3), stats=stats)
            times.append(time.perf_counter() - t)
        med = float(np.median(times)) * 1e3
        with capsys.disabled():
            print(f"\nsample_params+augment, {mask.shape} patch, elastic_p={elastic_p}: "
                  f"median {med:.2f} ms")
        assert med < 50  # generous: catches accidental full-volume work, not CI jitter


def test_signed_distance_is_computed_once_per_mask_and_kept_within_its_budget(monkeypatch):
    from scipy import ndimage as ndi

    from napari_lesionmix.core import transforms

    monkeypatch.setattr(transforms, "_SDF_CACHE", type(transforms._SDF_CACHE)())
    monkeypatch.setattr(transforms, "_SDF_CACHE_BYTES", 3 * 9 * 10 * 11 * 4)
    rng = np.random.default_rng(3)
    sp = np.array([3.0, 1.0, 1.0])
    masks = [rng.random((9, 10, 11)) < 0.2 for _ in range(5)]
    for m in masks:
        want = (ndi.distance_transform_edt(~m, sampling=sp)
                - ndi.distance_transform_edt(m, sampling=sp)).astype(np.float32)
        first = transforms._signed_distance(m, sp)
        again = transforms._signed_distance(m.copy(), sp)
        np.testing.assert_array_equal(first, want)
        assert again is first and not first.flags.writeable
        # another spacing is another map
        assert transforms._signed_distance(m, np.ones(3)) is not first
    assert sum(v.nbytes for v in transforms._SDF_CACHE.values()) <= transforms._SDF_CACHE_BYTES
    assert len(transforms._SDF_CACHE) == 3
