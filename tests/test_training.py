"""Model factory, ignore regions in the loss, export and Predictor (training/)."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic import bars_dataset

import hardex_nb as hx
from hardex_nb import JobError
from hardex_nb.jobs import Predictor, train
from hardex_nb.training import engine, models
from hardex_nb.training.data import ImageRows


def test_factory_builds_every_listed_model_without_downloading():
    for name in ("resnet18", "mobilenet_v3_small", "efficientnet_b0"):
        m = models.build_model(name, task="classification", num_classes=3, image_size=32)
        assert m(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    for name in (
        "fasterrcnn_resnet18_fpn",
        "fasterrcnn_mobilenet_v3_large_fpn",
        "ssdlite320_mobilenet_v3_large",
        "fcos_resnet50_fpn",
        "retinanet_resnet50_fpn",
    ):
        m = models.build_model(name, task="detection", num_classes=2, image_size=64).eval()
        out = m([torch.rand(3, 64, 64)])[0]
        assert set(out) >= {"boxes", "labels", "scores"}
    with pytest.raises(JobError, match="not a known classifier"):
        models.build_model("vgg99", task="classification", num_classes=2, image_size=32)


def test_covered_by_and_anchor_labels_inside_ignore_regions():
    boxes = torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60], [45, 45, 55, 55]])
    region = torch.tensor([[40.0, 40, 100, 100]])
    assert models.covered_by(boxes, region).tolist() == [False, True, True]
    m = models.build_model(
        "fasterrcnn_resnet18_fpn", task="detection", num_classes=2, image_size=64
    )
    anchors = [torch.tensor([[0.0, 0, 16, 16], [44, 44, 60, 60], [1, 1, 17, 17], [20, 40, 36, 56]])]
    target = {"boxes": torch.tensor([[0.0, 0, 16, 16]]), "labels": torch.tensor([1])}
    plain, _ = m.rpn.assign_targets_to_anchors(anchors, [target])
    masked, _ = m.rpn.assign_targets_to_anchors(anchors, [dict(target, ignore=region)])
    assert plain[0].tolist() == [1.0, 0.0, 1.0, 0.0]
    # the anchor inside the region is neither positive nor negative; the rest unchanged
    assert masked[0].tolist() == [1.0, -1.0, 1.0, 0.0]
    proposals = [torch.tensor([[44.0, 44, 60, 60], [0, 30, 20, 50]])]
    m.roi_heads._ignore = [region]
    _, labels = m.roi_heads.assign_targets_to_proposals(
        proposals, [target["boxes"]], [target["labels"]]
    )
    assert labels[0].tolist() == [-1, 0]


@pytest.mark.slow
def test_detector_trains_with_ignore_regions(tmp_path):
    from synthetic import boxes_dataset

    ds, ids, _ = boxes_dataset(tmp_path, n=8, n_labeled=8, size=64)
    ds.add_ignore_region(ids[0], 0, 0, 20, 20)
    run = train(ds, epochs=1, batch_size=4, image_size=64, progress=False)
    assert run.info["status"] == "succeeded"
    with pytest.raises(JobError, match="cannot exclude ignore regions"):
        train(ds, model="fcos_resnet50_fpn", epochs=1, progress=False)


@pytest.mark.slow
def test_weights_from_a_local_file(tmp_path):
    ds, ids, truth = bars_dataset(tmp_path)
    first = train(ds, epochs=3, batch_size=8, image_size=32, progress=False)
    again = train(
        ds,
        epochs=1,
        batch_size=8,
        image_size=32,
        progress=False,
        lr=1e-6,
        weights=ds.path / first.info["weights_path"],
    )
    # barely trained on top of V1's weights: predicts what V1 predicts
    assert (again.predict(ids[40:])["label"] == first.predict(ids[40:])["label"]).mean() > 0.9
    with pytest.raises(JobError, match="not found"):
        train(ds, epochs=1, progress=False, weights=tmp_path / "missing.pt")


def _cache_resnet18(torch_home, monkeypatch):
    """A resnet18 state dict where torchvision's weights API looks for ResNet18's DEFAULT
    weights (no network here: the real loading code reads it from the cache)."""
    import os

    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    path = torch_home / "hub" / "checkpoints" / os.path.basename(weights.url)
    path.parent.mkdir(parents=True)
    torch.manual_seed(7)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), path)
    return reference, path


def test_pretrained_weights_through_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    assert models.resolve_auto("resnet18", task="classification", weights="auto") == (None, None)
    with pytest.raises(
        JobError,
        match=r"ResNet18_Weights.IMAGENET1K_V1: its file is not in the "
        r"torch hub cache .*resnet18-f37072fd.pth",
    ):
        models.build_model(
            "resnet18", task="classification", num_classes=2, image_size=32, weights="DEFAULT"
        )
    reference, _ = _cache_resnet18(tmp_path / "torch", monkeypatch)
    assert models.resolve_auto("resnet18", task="classification", weights="auto") == (
        "DEFAULT",
        None,
    )
    assert models.default_image_size("resnet18", task="classification", weights="DEFAULT") == 224
    for spec in ("DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        net = models.build_model(
            "resnet18", task="classification", num_classes=3, image_size=32, weights=spec
        )
        assert torch.equal(net.conv1.weight, reference.conv1.weight)
        assert net.fc.out_features == 3  # a new head for this dataset
    with pytest.raises(JobError, match=r"weights='V9': resnet18 has"):
        models.build_model(
            "resnet18", task="classification", num_classes=3, image_size=32, weights="V9"
        )
    det = models.build_model(
        "fasterrcnn_resnet18_fpn",
        task="detection",
        num_classes=2,
        image_size=64,
        weights_backbone="DEFAULT",
    )
    assert torch.equal(det.backbone.body.conv1.weight, reference.conv1.weight)
    assert models.resolve_auto(
        "fasterrcnn_resnet18_fpn", task="detection", weights="auto", weights_backbone="auto"
    ) == (None, "DEFAULT")


@pytest.mark.slow
def test_train_starts_from_cached_default_weights(tmp_path, monkeypatch, capsys):
    reference, _ = _cache_resnet18(tmp_path / "torch", monkeypatch)
    ds, ids, truth = bars_dataset(tmp_path)
    run = train(ds, epochs=1, batch_size=8, image_size=32, lr=1e-9)  # default weights="auto"
    assert (
        "resnet18: starting from torchvision's ResNet18_Weights.IMAGENET1K_V1"
        in capsys.readouterr().out
    )
    params = ds.runs.set_index("version").loc[run.version, "params"]
    assert params["weights"] == "DEFAULT" and "ResNet18_Weights" in params["starting_point"]
    trained = run.model[1].conv1.weight.detach().cpu()  # a lr of 1e-9 leaves them in place
    assert torch.allclose(trained, reference.conv1.weight, atol=1e-5)
    scratch = train(ds, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    assert not torch.allclose(
        scratch.model[1].conv1.weight.detach().cpu(), reference.conv1.weight, atol=1e-3
    )


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".onnx", ".pt", ".pt2"])
def test_classifier_export_matches_run_predict(tmp_path, suffix):
    import warnings

    ds, ids, _ = bars_dataset(tmp_path)
    # the export computes in float32: compare with float32 predictions (no CUDA autocast)
    run = train(ds, epochs=2, batch_size=8, image_size=32, progress=False).to("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated torch.jit
        path = run.export(tmp_path / f"model{suffix}")
    paths = [ds.image_path(i) for i in ids[40:]]
    ours = run.predict(paths)
    theirs = Predictor.load(path).predict(paths)
    assert ours["label"].tolist() == theirs["label"].tolist()
    np.testing.assert_allclose(ours["score"], theirs["score"], atol=1e-4)
    with pytest.raises(JobError, match="needs the model file"):
        Predictor.load(tmp_path / "nothing.onnx")
    if suffix == ".onnx":  # the SDK folder: the same labels and scores, without hardex_nb
        sdk = _run_sdk(run.export_sdk(tmp_path / "sdk"), *map(str, paths))
        assert sdk["label"].tolist() == ours["label"].tolist()
        np.testing.assert_allclose(sdk["score"], ours["score"], atol=1e-4)
        assert "| CPU | 16 |" in (tmp_path / "sdk" / "README.md").read_text()


def test_detector_export_matches_run_predict(trained_detector, tmp_path):
    ds, run, ids, _ = trained_detector
    device = run.device
    run.to("cpu")  # the export computes in float32: compare with float32 predictions
    path = run.export(tmp_path / "det.pt")
    paths = [ds.image_path(i) for i in ids[45:50]]
    ours = run.predict(paths, threshold=0.3)
    theirs = Predictor.load(path).predict(paths, threshold=0.3)
    run.to(device)
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(
        ours[["x0", "y0", "x1", "y1"]], theirs[["x0", "y0", "x1", "y1"]], atol=1e-3
    )
    np.testing.assert_allclose(ours["score"], theirs["score"], atol=1e-4)


def _run_sdk(folder: Path, *args: str) -> pd.DataFrame:
    """The SDK's predict.py in a fresh interpreter where torch and hardex_nb cannot be
    imported: its CSV as a frame."""
    import subprocess

    guard = (
        "import sys; sys.modules['torch'] = sys.modules['hardex_nb'] = None; "
        f"sys.path.insert(0, {str(folder)!r}); sys.argv = ['predict.py', *sys.argv[1:]]; "
        "import predict; predict.main()"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", guard, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    import io

    return pd.read_csv(io.StringIO(done.stdout))


def test_detector_sdk_runs_without_hardex_nb_and_matches_run_predict(trained_detector, tmp_path):
    """run.export_sdk: model.onnx, predict.py (onnxruntime, numpy, Pillow), a README with
    the command line and the timing measured here; its boxes are run.predict's, also on a
    JPEG turned by its EXIF orientation."""
    from PIL import Image

    ds, run, ids, _ = trained_detector
    device = run.device
    run.to("cpu")
    folder = run.export_sdk(tmp_path / "sdk")
    assert {p.name for p in folder.iterdir()} == {
        "model.onnx",
        "model.json",
        "predict.py",
        "README.md",
    }
    turned = tmp_path / "turned.jpg"
    upright = Image.open(ds.image_path(ids[45])).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: a viewer rotates it 90° clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(turned, quality=95, exif=exif)
    paths = [ds.image_path(i) for i in ids[45:50]] + [turned]
    ours = run.predict(paths, threshold=0.3)
    run.to(device)
    theirs = _run_sdk(folder, *map(str, paths), "--threshold", "0.3")
    assert len(ours) == len(theirs) > 0 and (ours["image"] == str(turned)).any()
    assert ours["image"].tolist() == theirs["image"].tolist()
    assert ours["label"].tolist() == theirs["label"].tolist()
    np.testing.assert_allclose(
        ours[["x0", "y0", "x1", "y1"]], theirs[["x0", "y0", "x1", "y1"]], atol=1e-2
    )
    np.testing.assert_allclose(ours["score"], theirs["score"], atol=1e-4)
    readme = (folder / "README.md").read_text()
    assert "python predict.py" in readme and "pip install onnxruntime numpy pillow" in readme
    cpu = re.search(r"\| CPU \| 1 \| ([\d.]+) \| (\d+) \|", readme)
    assert cpu and float(cpu.group(1)) > 0
    assert "| GPU |" in readme or "| GPU (CUDA) | 1 |" in readme


def test_device_auto_picks_cpu_here():
    mps = getattr(torch.backends, "mps", None)
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if mps is not None and mps.is_available()
        else "cpu"
    )
    assert engine.resolve_device("auto").type == expected
    assert engine.resolve_device("cpu").type == "cpu"


@pytest.mark.slow
def test_streaming_past_the_memory_budget_gives_what_the_in_memory_path_gives(
    tmp_path, monkeypatch
):
    """A budget of one byte: every pass streams through DataLoader workers; training and
    every prediction equal the in-memory path's."""
    from hardex_nb.training import data as data_module
    from hardex_nb.training.data import ImageRows

    ds, ids, _ = bars_dataset(tmp_path, n=100, n_labeled=90)
    paths = [ds.image_path(i) for i in ids]
    cached = ImageRows(paths, 32, task="classification")
    streamed = ImageRows(paths, 32, task="classification", memory_budget=1, workers=2)
    assert not cached.streaming and streamed.streaming
    chunks = [list(range(s, min(s + 16, 100))) for s in range(0, 100, 16)]
    for (i_a, a), (i_b, b) in zip(
        cached.batches(chunks, torch.device("cpu")), streamed.batches(chunks, torch.device("cpu"))
    ):
        assert i_a == i_b and torch.equal(a, b)
    assert streamed._pixels is None  # nothing was kept

    in_memory = train(ds, epochs=2, batch_size=16, image_size=32, weights=None, progress=False)
    monkeypatch.setattr(data_module, "MEMORY_BUDGET", 1)
    streaming = train(ds, epochs=2, batch_size=16, image_size=32, weights=None, progress=False)
    np.testing.assert_allclose(streaming.history, in_memory.history, rtol=1e-5)
    views_streamed = streaming.views(ids)
    monkeypatch.setattr(data_module, "MEMORY_BUDGET", None)
    views_cached = streaming.views(ids)
    for got, want in zip(views_streamed, views_cached):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_detection_predictions_stream_like_they_are_cached(trained_detector, monkeypatch):
    from hardex_nb.training import data as data_module

    ds, run, ids, _ = trained_detector
    want = run.predict_raw(ids[:20])
    monkeypatch.setattr(data_module, "MEMORY_BUDGET", 1)
    got = run.predict_raw(ids[:20])
    for g, w in zip(got, want):
        np.testing.assert_allclose(g["boxes"], w["boxes"], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(g["scores"], w["scores"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_hard_examples_are_seen_more_often(tmp_path):
    from hardex_nb.training.data import ImageRows

    rows = ImageRows(
        [np.zeros((8, 8, 3), np.uint8)] * 5, 8, task="classification", targets=[0, 1, 0, 1, 0]
    )
    gen = torch.Generator().manual_seed(0)
    batches = engine.epoch_batches(rows, 4, gen, drop_last=False, repeats=[1, 2, 1, 1, 3])
    seen = np.bincount([i for b in batches for i in b.idx], minlength=5)
    assert seen.tolist() == [1, 2, 1, 1, 3]
    ds, ids, _ = bars_dataset(tmp_path, n=40, n_labeled=30)
    ds.mark_hard(ids[:4], reasons=[1])
    run = train(ds, epochs=1, batch_size=8, image_size=32, weights=None, progress=False)
    import json

    record = ds.runs.set_index("version").loc[run.version]
    # the four hard images, less those the run held out for validation
    assert 0 < json.loads(record["message"])["hard_examples_oversampled"] <= 4
    assert record["params"]["hard_weight"] == 2.0
    off = train(
        ds, epochs=1, batch_size=8, image_size=32, weights=None, hard_weight=1, progress=False
    )
    assert (
        json.loads(ds.runs.set_index("version").loc[off.version, "message"])[
            "hard_examples_oversampled"
        ]
        == 0
    )


def _bright_box_batch(n=6, size=64):
    """Images with one bright rectangle each, and that rectangle as the box target."""
    gen = np.random.default_rng(0)
    x = torch.zeros(n, 3, size, size)
    targets = []
    for i in range(n):
        x0, y0 = (int(v) for v in gen.integers(2, size // 2, 2))
        x1, y1 = x0 + int(gen.integers(8, size // 2 - 2)), y0 + int(gen.integers(8, size // 2 - 2))
        x[i, :, y0:y1, x0:x1] = 1.0
        targets.append(
            {
                "boxes": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32),
                "labels": torch.tensor([1]),
                "ignore": torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32),
            }
        )
    return x, targets


@pytest.mark.parametrize("mode", ["weak", "strong"])
def test_augmentation_moves_boxes_with_their_pixels(mode):
    from hardex_nb.training.data import augment_batch

    x, targets = _bright_box_batch()
    state = torch.random.get_rng_state()
    out, moved = augment_batch(x, targets, mode, 64, torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    changed = 0
    for img, t, before in zip(out, moved, targets):
        ys, xs = torch.nonzero(img.mean(0) > img.mean(0).max() * 0.5, as_tuple=True)
        seen = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=torch.float32)
        for key in ("boxes", "ignore"):  # targets and ignore regions
            assert type(t[key]) is torch.Tensor
            np.testing.assert_allclose(t[key][0], seen, atol=1.5)
        changed += not torch.equal(t["boxes"], before["boxes"])
    assert changed >= 1  # something did move
    again, _ = augment_batch(x, targets, mode, 64, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)  # a seed gives the same batch


def test_a_users_v2_transform_is_applied_and_must_keep_the_size():
    from torchvision.transforms import v2

    from hardex_nb.training.data import augment_batch

    x, targets = _bright_box_batch(n=2)
    out, moved = augment_batch(
        x, targets, v2.RandomVerticalFlip(p=1.0), 64, torch.Generator().manual_seed(0)
    )
    assert torch.equal(out, x.flip(-2))
    b = targets[0]["boxes"][0]
    np.testing.assert_allclose(moved[0]["boxes"][0], [b[0], 64 - b[3], b[2], 64 - b[1]])
    with pytest.raises(ValueError, match="must keep the 64×64 input size"):
        augment_batch(x, targets, v2.Resize((32, 32)), 64, torch.Generator())
    labels = [0, 1]
    out, same = augment_batch(x, labels, "strong", 64, torch.Generator().manual_seed(0))
    assert same == labels and out.shape == x.shape  # classification


@pytest.mark.slow
def test_train_records_the_augmentation_and_refuses_an_unknown_one(tmp_path):
    ds, ids, _ = bars_dataset(tmp_path, n=12, n_labeled=12)
    with pytest.raises(JobError, match="augment='heavy'"):
        train(ds, epochs=1, augment="heavy", progress=False)
    run = train(
        ds, epochs=1, batch_size=4, image_size=32, augment="strong", weights=None, progress=False
    )
    assert ds.runs.set_index("version").loc[run.version, "params"]["augment"] == "strong"


def test_detection_letterboxes_photos_and_maps_boxes_back(tmp_path):
    """A 4:3 photo keeps its aspect in the square; targets and predictions use one scale."""
    from PIL import Image

    from hardex_nb.training.data import ImageRows

    arr = np.zeros((300, 400, 3), np.uint8)
    arr[60:120, 200:360] = 255  # x 200..360, y 60..120
    Image.fromarray(arr).save(tmp_path / "wide.png")
    target = {"boxes": np.array([[200, 60, 360, 120]], float), "labels": np.array([1])}
    rows = ImageRows([tmp_path / "wide.png"], 100, task="detection", targets=[target])
    assert rows.letterbox and rows.scale(0) == (0.25, 0.25)
    x = rows.batch([0], torch.device("cpu"))[0]
    ys, xs = torch.nonzero(x[0] > 0.5, as_tuple=True)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (50, 15, 90, 30)
    assert x[:, 75:, :].abs().sum() == 0  # padding below the image
    np.testing.assert_allclose(rows.scaled_target(0)["boxes"][0], [50, 15, 90, 30])

    class Finds(torch.nn.Module):  # answers the bright area
        def forward(self, images):
            out = []
            for im in images:
                ys, xs = torch.nonzero(im[0] > 0.5, as_tuple=True)
                box = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]).float()
                out.append(
                    {"boxes": box, "labels": torch.tensor([1]), "scores": torch.tensor([0.9])}
                )
            return out

    plain, mirrored, _ = engine.predict_views(
        Finds(), rows, task="detection", device=torch.device("cpu"), flip=True
    )
    np.testing.assert_allclose(plain[0]["boxes"][0], [200, 60, 360, 120])
    np.testing.assert_allclose(mirrored[0]["boxes"][0], [200, 60, 360, 120])
    stretched = ImageRows([tmp_path / "wide.png"], 100, task="classification")
    assert not stretched.letterbox and stretched.scale(0) == (0.25, 1 / 3)


def _digits_dataset(folder, n_per_class: int, seed: int, pool_size: int | None = None):
    """scikit-learn's digits: 8 labels per class labeled, the rest of a fixed pool (its first
    ``pool_size`` images, default all 1,297) unlabeled, a fixed held-out test split of 500
    images (status unlabeled, as a user would leave it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_triage import digits_images, split

    paths, y = digits_images(folder / "images")
    test_idx, pool = split(len(paths), 500)
    pool = pool[:pool_size]
    rng = np.random.default_rng(seed)
    lab = np.concatenate(
        [rng.choice(pool[y[pool] == k], n_per_class, replace=False) for k in range(10)]
    )
    ds = hx.Dataset.create(folder / "ds", task="classification", labels=list("0123456789"))
    ds.add_images([paths[i] for i in pool] + [paths[i] for i in test_idx])
    sid = dict(zip(ds.samples["name"], ds.samples["sample_id"]))
    for i in lab:
        ds.set_label(int(sid[paths[i].name]), str(y[i]))
    test_ids = [int(sid[paths[i].name]) for i in test_idx]
    ds.set_split(test_ids, "test")
    return ds, test_ids, y[test_idx]


@pytest.mark.slow
def test_accurate_mode_beats_fast_on_held_out_digits(tmp_path):
    """FixMatch on the same 80 labels and the unlabeled pool scores above fast's held-out
    accuracy, and never looks at the test split. A pool of 500 (420 unlabeled) keeps the
    test to a minute and a half: seed 0 gives 0.878 against 0.816 (+0.06); on the whole
    pool of 1,297, 5 seeds measured +0.16 to +0.20 (it once fell to 0.15, when a
    half-trained model's pseudo-labels, and the test split's images, outnumbered the
    labeled ones 25 to 1)."""
    ds, test_ids, truth = _digits_dataset(tmp_path, 8, seed=0, pool_size=500)
    scores = {}
    for mode in ("fast", "accurate"):
        run = hx.train(ds, epochs=12, image_size=32, weights=None, mode=mode, progress=False)
        scores[mode] = float((run.predict_proba(test_ids).argmax(1) == truth).mean())
    assert scores["fast"] > 0.6, scores
    assert scores["accurate"] >= scores["fast"] + 0.04, scores
    record = json.loads(ds.runs.iloc[-1]["message"])
    pool = int(((ds.samples["status"] == "unlabeled") & (ds.samples["split"] != "test")).sum())
    # 64 training images (16 held out for validation): up to 16 × 64 unlabeled an epoch
    assert 0 < max(record["pseudo_labeled"]) <= min(16 * 64, pool)


def test_fixmatch_counts_only_the_sure_unlabeled_views():
    """FixMatch's loss is the labeled cross-entropy alone when no weak view is sure enough,
    and adds the strong views' cross-entropy toward the weak views' classes when all are."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 3))
    x, y = torch.rand(2, 3, 4, 4), torch.tensor([0, 2])
    weak, strong = torch.rand(6, 3, 4, 4), torch.rand(6, 3, 4, 4)
    rows = ImageRows([np.zeros((4, 4, 3), np.uint8)] * 6, 4, task="classification")
    supervised = torch.nn.functional.cross_entropy(net(x), y)
    never = engine.Consistency(rows, threshold=1.01)
    loss, kept = engine._fixmatch_loss(net, x, y, weak, strong, never)
    assert int(kept) == 0 and loss.item() == pytest.approx(supervised.item(), rel=1e-5)
    always = engine.Consistency(rows, threshold=0.0, weight=0.5)
    loss, kept = engine._fixmatch_loss(net, x, y, weak, strong, always)
    target = net(weak).argmax(1)
    unsup = torch.nn.functional.cross_entropy(net(strong), target)
    assert int(kept) == 6
    assert loss.item() == pytest.approx(supervised.item() + 0.5 * unsup.item(), rel=1e-5)


def test_fixmatch_epoch_shows_the_pool_once_up_to_its_limit():
    rows = ImageRows([np.zeros((4, 4, 3), np.uint8)] * 100, 4, task="classification")
    assert engine.Consistency(rows, ratio=3).steps(8) == 5  # 100 images, 24 a step
    assert engine.Consistency(rows, ratio=3, limit=30).steps(8) == 2
