"""Hand-crafted baselines: known-blur images, LBP codes, the Otsu normalisation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blursynth import baselines, metrics


def half_blurred(h: int = 96, w: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Left half sharp texture, right half the same texture Gaussian-blurred (sigma 3)."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 0.8)
    image = texture.copy()
    image[:, w // 2 :] = cv2.GaussianBlur(texture, (0, 0), 3.0)[:, w // 2 :]
    gt = np.zeros((h, w), dtype=bool)
    gt[:, w // 2 :] = True
    return image, gt


@pytest.mark.parametrize("method", ["su", "laplacian", "lbp"])
@pytest.mark.parametrize("seed", [0, 1])
def test_baselines_find_the_blurred_half(method, seed):
    image, gt = half_blurred(seed=seed)
    blur = baselines.blur_map(image, method)
    assert blur.shape == gt.shape and blur.dtype == np.float32
    assert blur.min() >= 0 and blur.max() <= 1
    assert blur[gt].mean() > blur[~gt].mean() + 0.3
    trivial = metrics.score_map(baselines.blur_map(image, "all-blurred"), gt)
    score = metrics.score_map(blur, gt)
    assert trivial["iou"] == pytest.approx(0.5)
    assert score["iou"] > trivial["iou"] + 0.3
    assert score["accuracy"] > 0.9


def test_baselines_accept_grey_and_odd_sizes():
    rng = np.random.default_rng(0)
    for shape in [(7, 5), (33, 17), (5, 40, 3)]:
        image = rng.random(shape, dtype=np.float32)
        for method in baselines.BASELINES:
            assert baselines.blur_map(image, method).shape == shape[:2]


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.blur_map(np.zeros((4, 4)), "magic")


def test_su_feature_low_rank_windows_are_blurred():
    flat = np.full((30, 30), 0.5, dtype=np.float32)
    np.testing.assert_allclose(baselines.su_feature(flat), 1.0, atol=1e-5)
    rng = np.random.default_rng(0)
    noise = baselines.su_feature(rng.random((30, 30), dtype=np.float32))
    assert noise.max() < 0.8  # full-rank windows spread their spectrum
    zeros = baselines.su_feature(np.zeros((20, 20), dtype=np.float32))
    assert (zeros == 1).all()


def test_laplacian_variance_of_a_plane_is_zero():
    yy, xx = np.mgrid[0:40, 0:40].astype(np.float32)
    var = baselines.laplacian_variance(0.01 * yy + 0.02 * xx)
    np.testing.assert_allclose(var[9:-9, 9:-9], 0, atol=1e-8)  # away from the reflected border


def test_lbp_codes_by_hand():
    grey = np.zeros((5, 5), dtype=np.float32)
    grey[2, 2] = 1.0
    codes = baselines.lbp_riu2(grey)
    assert codes[2, 2] == 0  # every neighbour darker
    # left of it: the right neighbour and both right diagonals (bilinear) are brighter
    assert codes[2, 1] == 3 and codes[1, 2] == 3
    assert codes[1, 1] == 1  # diagonal to it: only the interpolated diagonal sees it
    assert codes[0, 0] == 0  # the bright pixel is at distance sqrt(8): out of reach
    # a vertical edge: right-hand neighbours brighter -> one run of three bits
    edge = np.zeros((5, 5), dtype=np.float32)
    edge[:, 3:] = 1.0
    assert baselines.lbp_riu2(edge)[2, 2] == 3
    # bright left and right neighbours, dark above and below: two runs of bits -> 9
    gap = np.zeros((5, 5), dtype=np.float32)
    gap[2, 1] = gap[2, 3] = 1.0
    assert baselines.lbp_riu2(gap)[2, 2] == 9


def test_lbp_matches_skimage_without_threshold():
    feature = pytest.importorskip("skimage.feature")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    ref = feature.local_binary_pattern(image, P=8, R=1, method="uniform")
    # skimage sets a bit for g_p - g_c >= 0; ours for > threshold
    ours = baselines.lbp_riu2(image.astype(np.float32) / 255, threshold=-1e-6)
    inner = (slice(1, -1), slice(1, -1))
    assert np.mean(ours[inner] == ref[inner]) > 0.99


def test_lbp_sharpness_is_a_fraction():
    rng = np.random.default_rng(0)
    s = baselines.lbp_sharpness(rng.random((40, 40), dtype=np.float32))
    assert s.min() >= 0 and s.max() <= 1 and s.mean() > 0.2
    assert (baselines.lbp_sharpness(np.zeros((40, 40), dtype=np.float32)) == 0).all()


def test_otsu_normalise_puts_the_split_at_one_half():
    rng = np.random.default_rng(0)
    feature = np.concatenate([rng.normal(0, 1, 500), rng.normal(10, 1, 300)])
    out = baselines.otsu_normalise(feature)
    assert out.min() >= 0 and out.max() <= 1
    assert (out[:500] < 0.5).mean() > 0.99 and (out[500:] >= 0.5).mean() > 0.99
    assert np.all(np.diff(out[np.argsort(feature)]) >= 0)  # monotone
    np.testing.assert_array_equal(baselines.otsu_normalise(np.ones(7)), 0.5)


def test_background_sharpness_tells_a_sharp_background_from_a_blurred_one():
    """The median LBP sharpness off the object: high for texture, low for the same texture
    out of focus, whatever the object looks like; 0 with no background pixel."""
    rng = np.random.default_rng(0)
    texture = rng.random((60, 80, 3)).astype(np.float32)
    obj = np.zeros((60, 80), bool)
    obj[20:40, 25:55] = True
    background = ~obj
    blurred = cv2.GaussianBlur(texture, (0, 0), 3)
    for inside in (0.5, 0.0, 1.0):  # the object's pixels do not count
        sharp_scene, soft_scene = texture.copy(), blurred.copy()
        sharp_scene[obj] = soft_scene[obj] = inside
        sharp = baselines.background_sharpness(sharp_scene, background)
        soft = baselines.background_sharpness(soft_scene, background)
        assert sharp > 0.3 and soft < 0.1, (inside, sharp, soft)
    assert baselines.background_sharpness(texture, np.zeros_like(obj)) == 0.0
