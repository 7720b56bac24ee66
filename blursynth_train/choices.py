"""Choice lists shared by the trainer and its CLI, torch-free so that ``--help`` is instant.

The trainer validates against these and the CLI offers them, so the two cannot drift.
``MODEL_KINDS`` mirrors the registry (:func:`blursynth_train.models.model_kinds`); a test
keeps them equal.
"""

MODEL_KINDS = ("blurnet", "unet", "liteunet")
ENCODERS = ("lite0", "lite1", "lite2")
PRETRAINED = ("imagenet", "none")
CONTEXTS = ("none", "ppm")
"""liteunet: what sees the whole image before the decoder (``ppm``: pyramid pooling)."""
DECODER_KINDS = ("unet", "fpn")
"""liteunet: how the decoder merges the encoder's scales (U-Net stages or an FPN)."""
REFINES = ("none", "full")
"""liteunet: ``full`` refines the decoder's map at the input's resolution, with the image."""
LR_SCHEDULES = ("constant", "cosine", "step")
OPTIMIZERS = ("sgd", "adamw")
DEVICES = ("auto", "cpu", "cuda")
ON_DEVICE = ("auto", "yes", "no")
SELECT_BY = ("accuracy", "miou")
LOSSES = ("ce", "ce+dice")
STRIDES = (1, 2, 4)
TTA = ("none", "flips", "d4")
"""Test-time augmentation (:func:`blursynth_train.predict.Predictor`)."""
NAMED_WEIGHTS = ("bundled", "types", "report", "unet", "unet-types")
"""Names that stand for shipped weights wherever a checkpoint path is taken."""
