"""blursynth's own output (``blursynth generate``) read back as a blur-mask source."""

from __future__ import annotations

from blursynth.sources.shi import ShiSource


class SynthSource(ShiSource):
    """Output of ``blursynth generate`` (same layout; stems ``motion####``/``defocus####``)."""
