"""Bundled pretrained weights.

``blursynth_train segment`` and ``evaluate`` fall back to :func:`default_model_path` when no
``--model`` is given. The file is a float16 checkpoint made by ``blursynth_train export``;
``MODEL_CARD.md`` beside it says what it was trained on and how well it does.
"""

from __future__ import annotations

from pathlib import Path

from blursynth.errors import BlursynthError

WEIGHTS_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = "blurnet-cuhk.pt"


def default_model_path() -> Path:
    """Path of the bundled checkpoint.

    Raises
    ------
    BlursynthError
        When the package was installed without its weights.
    """
    path = WEIGHTS_DIR / DEFAULT_WEIGHTS
    if not path.is_file():
        raise BlursynthError("bundled weights are missing from this installation; pass --model "
                             "PATH (a checkpoint from `blursynth_train fit`)", path)
    return path
