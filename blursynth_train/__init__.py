"""blursynth_train: blur segmenters (the dense U-Net, the report's patch CNN), from shards.

Needs torch (``pip install -e .[train]``); :mod:`blursynth` itself never imports it.
"""

__version__ = "0.1.0"
