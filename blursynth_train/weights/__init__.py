"""Bundled pretrained weights.

``blursynth_train segment`` falls back to :func:`default_model_path` when no ``--model`` is
given; ``--model NAME`` in ``segment`` and ``evaluate``, ``fit --init NAME`` and the
:class:`~blursynth_train.predict.Segmenter` take the names of :data:`NAMED`
(:func:`resolve_weights`). Each file
is a float16 checkpoint made by ``blursynth_train export``; ``MODEL_CARD.md`` beside it says
what it was trained on and how well it does.
"""

from __future__ import annotations

from pathlib import Path

from blursynth.errors import BlursynthError

WEIGHTS_DIR = Path(__file__).resolve().parent
REPORT_WEIGHTS = "blurnet-cuhk.pt"
"""The report's patch CNN trained on CUHK (``--model report``)."""
DENSE_WEIGHTS = "liteunet-cuhk.pt"
"""EfficientNet-Lite0 (ImageNet) + U-Net decoder, fine-tuned on CUHK tiles: the default
segmenter."""
DEFAULT_WEIGHTS = DENSE_WEIGHTS
"""What ``bundled`` (and no ``--model``) means: the default segmenter."""
TYPES_WEIGHTS = "liteunet3-cuhk.pt"
"""The same family with sharp / motion / defocus output (``--model types``)."""
UNET_WEIGHTS = "unet-cuhk.pt"
"""The earlier default: a U-Net trained from scratch on CUHK tiles (``--model unet``)."""
UNET_TYPES_WEIGHTS = "unet3-cuhk.pt"
"""The earlier 3-class U-Net, synthetic pre-training then CUHK (``--model unet-types``)."""
BUNDLED = "bundled"
NAMED = {
    BUNDLED: None,
    "types": TYPES_WEIGHTS,
    "report": REPORT_WEIGHTS,
    "unet": UNET_WEIGHTS,
    "unet-types": UNET_TYPES_WEIGHTS,
}
"""Names that stand for shipped weights wherever a checkpoint path is taken
(:data:`blursynth_train.choices.NAMED_WEIGHTS`); ``bundled`` is :data:`DEFAULT_WEIGHTS`.
A name always means the shipped weights: a file of that name is passed as ``./NAME``."""


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
    the shipped weights of that name, even where a file of that name lies in the working
    folder (pass it as ``./NAME``): what a command line means must not depend on the folder
    it runs in.
    """
    if spec is None:
        return default_model_path()
    if isinstance(spec, str) and spec in NAMED:
        return named_weights_path(spec)
    return Path(spec)
