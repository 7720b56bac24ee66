"""Bundled pretrained weights.

``blursynth_train segment`` falls back to :func:`default_model_path` when no ``--model`` is
given; ``--model bundled`` / ``--model report`` in ``segment`` and ``evaluate``, and
``fit --init bundled`` / ``--init report``, name them (:func:`resolve_weights`). Each file
is a float16 checkpoint made by ``blursynth_train export``; ``MODEL_CARD.md`` beside it says
what it was trained on and how well it does.
"""

from __future__ import annotations

from pathlib import Path

from blursynth.errors import BlursynthError

WEIGHTS_DIR = Path(__file__).resolve().parent
REPORT_WEIGHTS = "blurnet-cuhk.pt"
"""The report's patch CNN trained on CUHK (``--model report``)."""
DENSE_WEIGHTS = "unet-cuhk.pt"
"""The dense U-Net trained on CUHK tiles: the default segmenter."""
DEFAULT_WEIGHTS = DENSE_WEIGHTS
"""What ``bundled`` (and no ``--model``) means: the default segmenter."""
TYPES_WEIGHTS = "unet3-cuhk.pt"
"""The 3-class U-Net (sharp / motion / defocus), ``--model types``: pre-trained on
synthetic renderings, then CUHK tiles."""
BUNDLED = "bundled"
NAMED = {BUNDLED: None, "report": REPORT_WEIGHTS, "types": TYPES_WEIGHTS}
"""Names that stand for shipped weights wherever a checkpoint path is taken
(:data:`blursynth_train.choices.NAMED_WEIGHTS`); ``bundled`` is :data:`DEFAULT_WEIGHTS`."""


def named_weights_path(name: str) -> Path:
    """Path of the shipped weights called ``name`` (``bundled``, ``report``).

    Raises
    ------
    BlursynthError
        When the package was installed without those weights.
    """
    path = WEIGHTS_DIR / (NAMED[name] or DEFAULT_WEIGHTS)
    if not path.is_file():
        raise BlursynthError(
            f"the {name} weights are missing from this installation; pass --model PATH "
            "(a checkpoint from `blursynth_train fit`)",
            path,
        )
    return path


def default_model_path() -> Path:
    """Path of the bundled (default) checkpoint."""
    return named_weights_path(BUNDLED)


def resolve_weights(spec: str | Path | None) -> Path:
    """A checkpoint path; ``None`` means the bundled weights, and a name in :data:`NAMED`
    the shipped weights of that name. A file that really is called so wins over the name.
    """
    if spec is None:
        return default_model_path()
    if str(spec) in NAMED and not Path(spec).is_file():
        return named_weights_path(str(spec))
    return Path(spec)
