"""blursynth_train: the report's blur-segmentation CNN, trained from blursynth shards.

Needs torch (``pip install -e .[train]``); :mod:`blursynth` itself never imports it.
"""

__version__ = "0.1.0"
