"""Bundled pretrained weights (none shipped yet).

``blursynth_train segment`` and ``evaluate`` fall back to :func:`default_model_path` when no
``--model`` is given; once weights are shipped as package data (``weights/*.pt``), this
returns their path.
"""

from __future__ import annotations

from pathlib import Path

from blursynth.errors import BlursynthError


def default_model_path() -> Path:
    """Path of the bundled checkpoint.

    Raises
    ------
    BlursynthError
        Always, for now: no weights are bundled yet.
    """
    raise BlursynthError("no bundled weights yet; pass --model PATH (a checkpoint from "
                         "`blursynth_train fit`)")
