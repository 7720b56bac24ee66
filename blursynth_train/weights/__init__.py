"""Bundled pretrained weights.

``blursynth_train segment`` falls back to :func:`default_model_path` when no ``--model`` is
given; ``evaluate --model bundled`` and ``fit --init bundled`` name them
(:func:`resolve_weights`). The file is a float16 checkpoint made by ``blursynth_train export``;
``MODEL_CARD.md`` beside it says what it was trained on and how well it does.
"""

from __future__ import annotations

from pathlib import Path

from blursynth.errors import BlursynthError

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = "blurnet-cuhk.pt"
BUNDLED = "bundled"
"""The name that stands for the bundled weights wherever a checkpoint path is taken."""


def default_model_path() -> Path:
    """Path of the bundled checkpoint.

    Raises
    ------
    BlursynthError
        When the package was installed without its weights.
    """
    path = WEIGHTS_DIR / DEFAULT_WEIGHTS
    if not path.is_file():
        raise BlursynthError(
            "bundled weights are missing from this installation; pass --model "
            "PATH (a checkpoint from `blursynth_train fit`)",
            path,
        )
    return path


def resolve_weights(spec: str | Path | None) -> Path:
    """A checkpoint path, with ``None`` and ``"bundled"`` meaning the bundled weights.

    A file that really is called ``bundled`` wins over the name.
    """
    if spec is None or (str(spec) == BUNDLED and not Path(spec).is_file()):
        return default_model_path()
    return Path(spec)
