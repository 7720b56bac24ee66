"""Scores against hand-computed cases, including the empty-class conventions."""

from __future__ import annotations

import numpy as np
import pytest

from blursynth import metrics

T, F = True, False


def test_two_by_two_by_hand():
    gt = np.array([[T, T], [F, F]])
    prob = np.array([[0.9, 0.2], [0.7, 0.1]])  # tp, fn / fp, tn
    pred = prob >= 0.5
    assert metrics.confusion(pred, gt) == (1, 1, 1, 1)
    assert metrics.iou(pred, gt) == pytest.approx(1 / 3)
    assert metrics.mean_iou(pred, gt) == pytest.approx(1 / 3)
    assert metrics.pixel_accuracy(pred, gt) == pytest.approx(0.5)
    assert metrics.f_measure(pred, gt) == pytest.approx(0.5)  # P = R = 0.5
    assert metrics.mae(prob, gt) == pytest.approx((0.1 + 0.8 + 0.7 + 0.1) / 4)


def test_asymmetric_case_by_hand():
    gt = np.array([T, T, T, F])
    pred = np.array([T, F, F, F])  # tp=1 fp=0 fn=2 tn=1
    assert metrics.iou(pred, gt) == pytest.approx(1 / 3)
    assert metrics.mean_iou(pred, gt) == pytest.approx(0.5 * (1 / 3 + 1 / 3))
    assert metrics.pixel_accuracy(pred, gt) == pytest.approx(0.5)
    p, r = 1.0, 1 / 3
    assert metrics.f_measure(pred, gt) == pytest.approx(1.3 * p * r / (0.3 * p + r))
    assert metrics.f_measure(pred, gt, beta2=1.0) == pytest.approx(2 * p * r / (p + r))


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        # no blur anywhere, none predicted: perfect
        ([F, F, F], [F, F, F], {"iou": 1.0, "miou": 1.0, "accuracy": 1.0, "f": 1.0}),
        # no blur in the truth, some predicted: blurred IoU 0, F 0
        (
            [T, F, F],
            [F, F, F],
            {"iou": 0.0, "miou": 0.5 * (0 + 2 / 3), "accuracy": 2 / 3, "f": 0.0},
        ),
        # all blurred and all predicted blurred: the absent sharp class counts 1
        ([T, T, T], [T, T, T], {"iou": 1.0, "miou": 1.0, "accuracy": 1.0, "f": 1.0}),
        # blur present, nothing predicted: 0/0 precision counts 0
        (
            [F, F, F],
            [T, F, F],
            {"iou": 0.0, "miou": 0.5 * (0 + 2 / 3), "accuracy": 2 / 3, "f": 0.0},
        ),
    ],
)
def test_empty_class_conventions(pred, gt, expected):
    pred, gt = np.array(pred), np.array(gt)
    assert metrics.iou(pred, gt) == pytest.approx(expected["iou"])
    assert metrics.mean_iou(pred, gt) == pytest.approx(expected["miou"])
    assert metrics.pixel_accuracy(pred, gt) == pytest.approx(expected["accuracy"])
    assert metrics.f_measure(pred, gt) == pytest.approx(expected["f"])


def test_adaptive_threshold():
    assert metrics.adaptive_threshold(np.array([0.1, 0.3])) == pytest.approx(0.4)
    assert metrics.adaptive_threshold(np.array([0.6, 0.8])) == 1.0  # capped
    zero = np.zeros(4)
    assert not (zero >= metrics.adaptive_threshold(zero)).any()  # all-zero map: nothing blurred
    one = np.ones(4)
    assert (one >= metrics.adaptive_threshold(one)).all()


def test_score_map_matches_the_parts():
    rng = np.random.default_rng(0)
    prob = 0.6 * rng.random((20, 30))  # mean ~0.3: the adaptive threshold is not capped
    gt = rng.random((20, 30)) < 0.4
    s = metrics.score_map(prob, gt)
    assert tuple(s) == (*metrics.METRICS, "counts")
    assert tuple(s["counts"]) == metrics.confusion(prob >= 0.5, gt)
    pred = prob >= 0.5
    assert s["iou"] == metrics.iou(pred, gt)
    assert s["f_beta_adaptive"] == metrics.f_measure(prob >= 2 * prob.mean(), gt)
    assert s["mae"] == pytest.approx(np.abs(prob - gt).mean())


def test_trivial_answer_scores_the_blurred_fraction():
    gt = np.zeros((10, 10), dtype=bool)
    gt[:, :3] = True
    s = metrics.score_map(np.ones((10, 10)), gt)
    assert s["iou"] == pytest.approx(0.3)
    assert s["accuracy"] == pytest.approx(0.3)
    assert s["miou"] == pytest.approx(0.15)  # the sharp class is present and never found
    assert s["mae"] == pytest.approx(0.7)


def test_average():
    assert metrics.average([]) == {}
    assert metrics.average([{"iou": 0.2, "mae": 1.0}, {"iou": 0.4, "mae": 0.0}]) == pytest.approx(
        {"iou": 0.3, "mae": 0.5}
    )


def test_bad_inputs():
    gt = np.zeros((3, 3), dtype=bool)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.iou(np.zeros((3, 4), dtype=bool), gt)
    with pytest.raises(ValueError, match="mask must be bool"):
        metrics.iou(gt, gt.astype(np.uint8))
    with pytest.raises(ValueError, match="prediction must be bool"):
        metrics.iou(gt.astype(float), gt)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.score_map(np.full((3, 3), 2.0), gt)


def test_nan_in_the_map_is_rejected():
    """NaN used to slip past the range check (``nanmin``) and score as "sharp"."""
    gt = np.zeros((2, 2), dtype=bool)
    prob = np.array([[0.2, np.nan], [0.4, 0.9]])
    with pytest.raises(ValueError, match=r"finite and lie in \[0, 1\]"):
        metrics.score_map(prob, gt)
    with pytest.raises(ValueError, match="finite"):
        metrics.score_map(np.full((2, 2), np.nan), gt)


def test_pooled_iou_weighs_pixels_not_images():
    """A big image that is right and a small one that is wrong: the per-image mean weighs
    them alike, the pooled IoU by their pixels (the defocus literature's number)."""
    big = np.ones((100, 100), dtype=bool)
    small = np.ones((2, 2), dtype=bool)
    scores = [
        metrics.score_map(np.ones((100, 100)), big),
        metrics.score_map(np.zeros((2, 2)), small),
    ]
    summary = metrics.average(scores)
    assert summary["iou"] == pytest.approx(0.5)
    assert summary["iou_pooled"] == pytest.approx(10_000 / 10_004)


def test_score_classes_per_class_iou_and_blur_type():
    gt = np.zeros((4, 4), dtype=bool)
    gt[:, :2] = True
    probs = np.zeros((3, 4, 4))
    probs[0][:, 2:] = 1  # sharp right half: right
    probs[1][:, :2] = 0.7  # motion on the blurred half...
    probs[2][:, :2] = 0.3
    s = metrics.score_classes(probs, gt, "motion")
    counts = s.pop("class_counts")
    assert s == {"iou_sharp": 1.0, "iou_motion": 1.0, "iou_defocus": 1.0, "type_accuracy": 1.0}
    assert counts == [[8, 8], [8, 8], [0, 0]]
    s = metrics.score_classes(probs, gt, "defocus")  # ...but the image is defocused
    assert s["iou_defocus"] == 0.0 and s["iou_motion"] == 0.0 and s["type_accuracy"] == 0.0
    assert s["iou_sharp"] == 1.0
    assert metrics.score_classes(probs, gt, "defocus")["class_counts"] == [[8, 8], [0, 8], [0, 8]]
    with pytest.raises(ValueError, match="class_probs must be"):
        metrics.score_classes(probs[:2], gt, "motion")


def test_pooled_class_iou_does_not_reward_never_saying_motion():
    """A model that calls every blurred pixel defocus: on defocus images its per-image motion
    IoU is 1 (motion absent from truth and prediction), so the per-image mean over a motion
    and a defocus image is 0.5; pooled over the pixels, motion IoU is 0."""
    gt = np.zeros((4, 4), dtype=bool)
    gt[:, :2] = True
    probs = np.zeros((3, 4, 4))
    probs[0][:, 2:] = 1
    probs[2][:, :2] = 1  # defocus, always
    rows = [
        metrics.score_classes(probs, gt, "motion"),
        metrics.score_classes(probs, gt, "defocus"),
    ]
    summary = metrics.average(rows)
    assert summary["iou_motion"] == 0.5 and summary["iou_motion_pooled"] == 0.0
    assert summary["iou_defocus_pooled"] == pytest.approx(8 / 16)
    assert summary["iou_sharp_pooled"] == 1.0 and "class_counts" not in summary
