import numpy as np
import pytest

from blursynth.baselines import otsu_threshold
from blursynth.postprocess import guided_filter, postprocess


def _step_scene(seed=0):
    """Image with a vertical edge at x=40; a map whose edge is misplaced at x=44 and noisy."""
    rng = np.random.default_rng(seed)
    image = np.full((64, 80, 3), 0.2, np.float32)
    image[:, 40:] = 0.8
    truth = np.zeros((64, 80), np.float32)
    truth[:, 40:] = 1
    prob = np.zeros((64, 80), np.float32)
    prob[:, 44:] = 1
    prob = np.clip(prob + rng.normal(0, 0.2, prob.shape).astype(np.float32), 0, 1)
    return image, truth, prob


def test_guided_filter_moves_map_edges_onto_image_edges_and_removes_noise():
    image, truth, prob = _step_scene()
    out = guided_filter(image, prob)  # the defaults
    assert out.shape == prob.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    err_before = np.abs((prob >= 0.5) - truth).mean()
    err_after = np.abs((out >= 0.5) - truth).mean()
    assert err_after < err_before / 2
    # flat regions: the noise is averaged away
    assert out[:, 5:30].std() < prob[:, 5:30].std() / 3


def test_constant_map_stays_constant():
    image, _, _ = _step_scene()
    prob = np.full((64, 80), 0.3, np.float32)
    np.testing.assert_allclose(guided_filter(image, prob), 0.3, atol=1e-5)


def test_postprocess_names_and_bad_arguments():
    image, _, prob = _step_scene()
    assert postprocess("none", image, prob) is prob
    np.testing.assert_array_equal(postprocess("guided", image, prob), guided_filter(image, prob))
    split = postprocess("guided-otsu", image, prob)
    assert split.dtype == np.float32 and 0 <= split.min() and split.max() <= 1
    # the same ordering of pixels as the guided map, with its Otsu split moved to 0.5
    guided = guided_filter(image, prob)
    t = otsu_threshold(
        np.clip((guided - np.percentile(guided, 1)) / np.ptp(np.percentile(guided, [1, 99])), 0, 1)
    )
    assert (
        (split >= 0.5)
        == (guided >= np.percentile(guided, 1) + t * np.ptp(np.percentile(guided, [1, 99])))
    ).mean() > 0.999
    with pytest.raises(ValueError, match="one of"):
        postprocess("median", image, prob)
    with pytest.raises(ValueError, match="radius"):
        guided_filter(image, prob, radius=0)
    with pytest.raises(ValueError, match="same size"):
        guided_filter(image[:10], prob)


def test_guided_otsu_splits_a_map_that_a_fixed_threshold_leaves_whole():
    """A map that sits above 0.5 everywhere (an over-confident "blurred") still separates the
    two sides of the scene once the per-image split is used."""
    image, truth, prob = _step_scene()
    shifted = np.clip(0.55 + 0.4 * prob, 0, 1).astype(np.float32)
    assert (postprocess("guided", image, shifted) >= 0.5).all()
    split = postprocess("guided-otsu", image, shifted) >= 0.5
    assert np.abs(split - truth).mean() < 0.1
