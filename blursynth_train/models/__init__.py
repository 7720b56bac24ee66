"""Model families by name: one small registry that training, inference, export and checkpoint
loading ask, never ``if kind == ...``.

A family is a config dataclass (frozen, with a ``kind`` field naming the family, a
``classes`` count and ``to_dict``/``from_dict``), a :class:`torch.nn.Module` built from it,
and the dataset kind it trains on (:class:`ModelFamily`). The contract callers rely on,
instead of probing the model:

* ``family.dense``: a dense model takes uint8 images ``(N, 3, H, W)`` of any size and
  returns logits ``(N, C, H, W)``; a patch classifier takes patches and returns ``(N, C)``,
  and has ``dense_probs(image, stride, tile)`` for whole images. Class 0 is sharp; 2
  classes: blurred; 3: motion, defocus.
* ``family.options``: the ``fit`` options (FitConfig fields and CLI options) that go into
  its config, e.g. ``encoder``; ``config_for_dataset(params, options)`` builds the config.
* :func:`create_model` ``(config, pretrained=False)``: only ``fit`` asks for pretrained
  weights (``model.load_pretrained()``); a checkpoint holds the whole model, so loading one
  never reads them.
* :func:`parameter_groups`: what trains, with a learning-rate scale per group (a model's
  ``parameter_groups()`` when it has one), and no weight decay on norms and biases.

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
from blursynth_train.models.liteunet import LiteUNet, LiteUNetConfig
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
        The dataset kind it trains on (:func:`blursynth.kinds.kind_names`).
    config_for_dataset : callable
        ``(dataset params dict, options dict) -> config``: the config that fits a dataset's
        rows, with the family's ``options`` as given to ``fit`` (absent: the default).
    dense : bool
        Whole images in, a logit map out (else a patch classifier).
    options : tuple of str
        Names of the ``fit`` options the family takes (FitConfig fields); ``fit`` refuses
        them for other families.
    """

    name: str
    config_cls: type
    model_cls: Callable[..., nn.Module]
    dataset_kind: str
    config_for_dataset: Callable[[dict, dict], object]
    dense: bool = True
    options: tuple[str, ...] = ()


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


def create_model(config, pretrained: bool = False) -> nn.Module:
    """The model of a config of any registered family; with ``pretrained`` (and a config
    that asks for them) its pretrained weights are loaded (``model.load_pretrained()``)."""
    model = get_family(config.kind).model_cls(config)
    if pretrained and getattr(config, "pretrained", "none") != "none":
        model.load_pretrained()
    return model


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: the model's own (``parameter_groups()``: name, parameters,
    learning-rate scale), each split into weights with ``weight_decay`` and norms and biases
    (1-d tensors) without. ``lr_scale`` multiplies the scheduled rate of its group.

    A model without ``parameter_groups`` (the U-Net and the report CNN) keeps one group of
    every parameter with ``weight_decay``, as its checkpoints were trained (and resume).
    """
    if not hasattr(model, "parameter_groups"):
        return [{"params": list(model.parameters()), "weight_decay": weight_decay, "lr_scale": 1.0}]
    groups = []
    for name, params, scale in model.parameter_groups():
        for suffix, members, wd in (
            ("", [p for p in params if p.ndim > 1], weight_decay),
            ("-no-decay", [p for p in params if p.ndim <= 1], 0.0),
        ):
            if members:
                groups.append(
                    {
                        "name": name + suffix,
                        "params": members,
                        "weight_decay": wd,
                        "lr_scale": scale,
                    }
                )
    return groups


def family_of(config) -> ModelFamily:
    return get_family(config.kind)


register_model(
    ModelFamily(
        name="blurnet",
        config_cls=ModelConfig,
        model_cls=BlurNet,
        dataset_kind="patches",
        config_for_dataset=lambda params, options: ModelConfig(
            patch_size=int(params["patch_size"])
        ),
        dense=False,
    )
)
register_model(
    ModelFamily(
        name="unet",
        config_cls=UNetConfig,
        model_cls=UNet,
        dataset_kind="tiles",
        config_for_dataset=lambda params, options: UNetConfig(
            classes=int(params.get("classes", 2))
        ),
    )
)
register_model(
    ModelFamily(
        name="liteunet",
        config_cls=LiteUNetConfig,
        model_cls=LiteUNet,
        dataset_kind="tiles",
        config_for_dataset=lambda params, options: LiteUNetConfig(
            classes=int(params.get("classes", 2)),
            **{k: v for k, v in options.items() if v is not None},
        ),
        options=("encoder", "pretrained", "freeze_blocks", "context", "decoder_kind", "refine"),
    )
)

__all__ = [
    "BlurNet",
    "LiteUNet",
    "LiteUNetConfig",
    "ModelConfig",
    "ModelFamily",
    "UNet",
    "UNetConfig",
    "config_from_dict",
    "create_model",
    "family_of",
    "get_family",
    "model_kinds",
    "parameter_groups",
    "register_model",
]
