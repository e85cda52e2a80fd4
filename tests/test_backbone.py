"""model=backbone: a torchvision classifier whose weights come from a file or torch's hub cache (never
a download here: every test refuses connections), with a new head for the data's classes; exported,
its bundle predicts and serves as its checkpoint does."""

import base64
import json
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn import datasets
from torchvision import models

from litlab.errors import UserError
from litlab.inference.checkpoint import predict
from litlab.inference.export import export
from litlab.run.build import build_datamodule, build_model
from litlab.run.train import train
from litlab.runtime.predict_files import predict_bundle
from tests.helpers.config import compose_cfg
from tests.helpers.serving import assert_answers_equal_predict, post, servers

pytestmark = pytest.mark.e2e
LOCAL_URLOPEN = urllib.request.urlopen
SMALL = ["model=backbone", "model.arch=mobilenet_v3_small"]  # the smallest of the three (2.5M parameters)


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Any download is an error (only the test's own server on 127.0.0.1 answers); torch's hub cache
    is the test's own."""

    def local_only(url, *args, **kwargs):
        address = url.full_url if isinstance(url, urllib.request.Request) else str(url)
        if not address.startswith("http://127.0.0.1:"):
            raise OSError(f"this test opens no connection beyond 127.0.0.1 ({address})")
        return LOCAL_URLOPEN(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def in_hub_cache(tmp_path: Path) -> Path:
    """Where torchvision's file of MobileNetV3-Small's published weights lies in the test's hub cache."""
    url = models.get_weight("MobileNet_V3_Small_Weights.DEFAULT").url
    return tmp_path / "torch_home" / "hub" / "checkpoints" / Path(url).name


def saved(arch: str, path: Path, seed: int) -> dict[str, torch.Tensor]:
    """A state dict of `arch` with seeded random weights, written to `path` as torch.save writes one."""
    torch.manual_seed(seed)
    state = models.get_model(arch, weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def assert_body_holds(model, state: dict[str, torch.Tensor]) -> None:
    body = model.net.body.state_dict()
    assert body.keys() == {k for k in state if not k.startswith("classifier.3.")}  # the old head is gone
    for name, value in body.items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0, msg=name)


def test_weights_from_a_file_fill_the_body_and_the_head_has_the_datas_width(tmp_path):
    state = saved("mobilenet_v3_small", tmp_path / "mine.pt", seed=1)
    cfg = compose_cfg(tmp_path, *SMALL, f"model.weights={tmp_path / 'mine.pt'}")
    model = build_model(cfg, build_datamodule(cfg))
    assert_body_holds(model, state)
    assert model.net.head.out_features == 10 and model.backbone is model.net.body  # digits: 10 classes
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)  # gray 8x8 pictures, repeated to 3 channels


def test_a_published_weight_name_is_read_from_the_hub_cache_and_never_downloaded(tmp_path):
    cfg = compose_cfg(tmp_path, *SMALL, "model.weights=IMAGENET1K_V1")
    with pytest.raises(UserError, match="not in torch's hub cache .* and not downloadable here"):
        build_model(cfg, build_datamodule(cfg))
    state = saved("mobilenet_v3_small", in_hub_cache(tmp_path), seed=2)
    model = build_model(cfg, build_datamodule(cfg))
    assert_body_holds(model, state)
    full = compose_cfg(tmp_path, *SMALL, "model.weights=MobileNet_V3_Small_Weights.DEFAULT")  # torchvision's name
    assert_body_holds(build_model(full, build_datamodule(full)), state)


def body_input(model, x: torch.Tensor) -> torch.Tensor:
    """What the torchvision body receives when the model is given `x`."""
    seen = []
    hook = model.net.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    hook.remove()
    return seen[0]


@pytest.mark.parametrize("scaling", ["standard", "minmax", "none"])
def test_published_weights_get_pixels_as_they_were_trained_on_whatever_the_datas_scaling(tmp_path, scaling):
    saved("mobilenet_v3_small", in_hub_cache(tmp_path), seed=4)
    cfg = compose_cfg(tmp_path, *SMALL, "model.weights=DEFAULT", f"data.scaling={scaling}")
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm).eval()
    assert model.net.image_size == 224  # the weights' own crop size, where model.image_size is null
    raw = torch.from_numpy(datasets.load_digits().images[:4]).float()[:, None]  # (4, 1, 8, 8), pixels 0..16
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
    expected = F.interpolate((raw.expand(-1, 3, -1, -1) / 16 - mean) / std, size=(224, 224), mode="bilinear")
    torch.testing.assert_close(body_input(model, dm.scaler(raw)), expected, rtol=1e-5, atol=1e-5)
    # From this run's data, not from a checkpoint: init_from cannot bring another run's; a model
    # rebuilt from its hparams (as from its checkpoint) adapts the input as this one does.
    assert not any(k.startswith("net.input_") for k in model.state_dict())
    rebuilt = type(model)(**model.hparams).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(body_input(rebuilt, dm.scaler(raw)), expected, rtol=1e-5, atol=1e-5)
    # Hparams without pixel_unit (a checkpoint's where no data told it): the input is taken as it comes.
    legacy = type(model)(**{k: v for k, v in model.hparams.items() if k != "pixel_unit"})
    assert legacy.net.image_size is None and not legacy.net.affine
    sized = compose_cfg(tmp_path, *SMALL, "model.weights=DEFAULT", "model.image_size=32")
    assert build_model(sized, build_datamodule(sized)).net.image_size == 32  # the user's size wins


def test_weights_from_a_file_or_none_leave_the_datas_own_scaling(tmp_path):
    saved("mobilenet_v3_small", tmp_path / "mine.pt", seed=5)
    for weights in ("none", str(tmp_path / "mine.pt")):
        cfg = compose_cfg(tmp_path, *SMALL, f"model.weights={weights}")
        dm = build_datamodule(cfg)
        model = build_model(cfg, dm).eval()
        scaled = dm.scaler(torch.from_numpy(datasets.load_digits().images[:4]).float()[:, None])
        assert model.net.image_size is None and "net.input_gain" not in model.state_dict()
        torch.testing.assert_close(body_input(model, scaled), scaled.expand(-1, 3, -1, -1), rtol=0, atol=0)


def test_weights_of_another_architecture_or_name_are_refused(tmp_path):
    saved("resnet18", tmp_path / "resnet.pt", seed=0)
    for weights, says in ((tmp_path / "resnet.pt", "does not hold mobilenet_v3_small's weights"),
                          ("IMAGENET9K_V9", "is neither a file nor a weight of mobilenet_v3_small"),
                          ("MobileNet_V3_Small_Weights.IMAGENET9K_V9", "is neither a file nor a weight")):  # fmt: skip
        cfg = compose_cfg(tmp_path, *SMALL, f"model.weights={weights}")
        with pytest.raises(UserError, match=says):
            build_model(cfg, build_datamodule(cfg))


@pytest.mark.slow  # about a minute: two epochs of MobileNetV3 on digits, an export, two predictions
def test_a_backbone_run_exports_with_parity_and_its_bundle_predicts_as_its_checkpoint(tmp_path):
    # Published weights (from the test's hub cache): the bundle must carry their input adaptation too.
    saved("mobilenet_v3_small", in_hub_cache(tmp_path), seed=3)
    run = tmp_path / "run"
    weights = ["model.weights=DEFAULT", "model.image_size=32"]
    train(compose_cfg(run, *SMALL, *weights, "model.freeze_epochs=1", "~callbacks.test_figures"))
    ckpt = next((run / "checkpoints").glob("epoch_*.ckpt"))
    bundle = export(str(ckpt), "onnx", tmp_path / "bundle")
    parity = json.loads((bundle / "parity.json").read_text())
    assert parity["batch_N"]["agreement"] == 1.0 and parity["batch_N"]["max_abs_diff"] < 1e-4
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, image in enumerate(datasets.load_digits().images[:8]):
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).save(pictures / f"{i:02d}.png")
    predict_bundle(str(bundle), str(pictures), str(tmp_path / "bundle.csv"))
    expected = predict(str(ckpt), str(pictures), str(tmp_path / "ckpt.csv"))
    predicted = pd.read_csv(tmp_path / "bundle.csv")
    assert (predicted["pred_class"] == expected["pred_class"]).all()
    probs = [c for c in expected.columns if c.startswith("prob_")]
    np.testing.assert_allclose(predicted[probs].to_numpy(), expected[probs].to_numpy(), rtol=0, atol=1e-4)
    with servers(tmp_path, f"bundle={bundle}") as (port,):  # serve.py on the bundle answers the same
        images = [base64.b64encode(p.read_bytes()).decode() for p in sorted(pictures.iterdir())]
        status, answer = post(port, {"images": images})
    assert status == 200, answer
    assert_answers_equal_predict(answer, expected)
