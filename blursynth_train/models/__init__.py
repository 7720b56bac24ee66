"""Model families by name: one small registry that training, inference, export and checkpoint
loading ask, never ``if kind == ...``.

A family is a config dataclass (frozen, with a ``kind`` field naming the family and
``to_dict``/``from_dict``), a :class:`torch.nn.Module` built from it, and the dataset kind it
trains on. Every model of every family:

* takes uint8 images ``(N, 3, H, W)`` and returns logits (``(N, C)`` for a patch classifier,
  ``(N, C, H, W)`` for a dense model), class 0 = sharp;
* has ``config`` and ``dense_probs(image, stride=1, tile=256)``: the blur probability of
  every pixel of one image ``(3, H, W)``, float32 ``(H, W)``.

Adding a family: write ``models/NAME.py`` with its config and module, then register it here
with :func:`register_model` (see ``docs/architecture.md``). Anchor: timm's
``_registry.py`` (``register_model`` / ``create_model``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from blursynth.errors import BlursynthError
from blursynth_train.models.blurnet import BlurNet, ModelConfig
from blursynth_train.models.unet import UNet, UNetConfig


@dataclass(frozen=True)
class ModelFamily:
    """One model family: how to make its config and model, and what it trains on.

    Parameters
    ----------
    name : str
        The ``kind`` in its configs and in checkpoints.
    config_cls : type
        Frozen dataclass with ``to_dict()`` and ``from_dict(d)``.
    model_cls : callable
        ``model_cls(config) -> nn.Module``.
    dataset_kind : str
        The dataset kind it trains on (:data:`blursynth.schema.DATASET_KINDS`).
    config_for_dataset : callable
        ``(dataset params dict) -> config``: the config that fits a dataset's rows.
    """

    name: str
    config_cls: type
    model_cls: Callable[..., nn.Module]
    dataset_kind: str
    config_for_dataset: Callable[[dict], object]


_FAMILIES: dict[str, ModelFamily] = {}
LEGACY_KIND = "blurnet"
"""The kind of a checkpoint whose model config names none (written before families)."""


def register_model(family: ModelFamily) -> ModelFamily:
    """Add a family to the registry (names are unique)."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


def model_kinds() -> tuple[str, ...]:
    """Names of the registered families, in registration order (the CLI's choices)."""
    return tuple(_FAMILIES)


def get_family(kind: str) -> ModelFamily:
    try:
        return _FAMILIES[kind]
    except KeyError:
        raise BlursynthError(
            f"unknown model kind {kind!r}; this blursynth_train knows {', '.join(_FAMILIES)}"
        ) from None


def config_from_dict(d: dict):
    """The config of a saved model (``kind`` names the family; none: :data:`LEGACY_KIND`)."""
    d = dict(d)
    family = get_family(d.pop("kind", LEGACY_KIND))
    return family.config_cls.from_dict(d)


def create_model(config) -> nn.Module:
    """The model of a config of any registered family."""
    return get_family(config.kind).model_cls(config)


def family_of(config) -> ModelFamily:
    return get_family(config.kind)


register_model(
    ModelFamily(
        name="blurnet",
        config_cls=ModelConfig,
        model_cls=BlurNet,
        dataset_kind="patches",
        config_for_dataset=lambda params: ModelConfig(patch_size=int(params["patch_size"])),
    )
)
register_model(
    ModelFamily(
        name="unet",
        config_cls=UNetConfig,
        model_cls=UNet,
        dataset_kind="tiles",
        config_for_dataset=lambda params: UNetConfig(classes=int(params.get("classes", 2))),
    )
)

__all__ = [
    "BlurNet",
    "ModelConfig",
    "ModelFamily",
    "UNet",
    "UNetConfig",
    "config_from_dict",
    "create_model",
    "family_of",
    "get_family",
    "model_kinds",
    "register_model",
]
