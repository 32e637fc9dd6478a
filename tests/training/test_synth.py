"""The synthetic street-scene generator: determinism, label validity, dataset layout, validator augmentation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from training.synth import CLASSES, Recipe, augment_streetvision, render_scene, render_scene_augmented, write_dataset

SIZE = (320, 240)


def test_classes_match_the_shipped_weights_and_config() -> None:
    from ultralytics import YOLO  # type: ignore[attr-defined]

    from router.config import load_config

    models = Path(__file__).resolve().parents[2] / "detectors" / "models"
    for weights in ("roadwork-yolo11n.pt", "roadwork-yolov8n.pt"):
        assert tuple(YOLO(str(models / weights)).names.values()) == CLASSES
    for d in load_config(env={}).detectors:
        assert set(d.evidence_classes) <= set(CLASSES)


def test_render_is_deterministic_for_a_seed() -> None:
    a_img, a_lab, a_rw = render_scene(np.random.default_rng(123), SIZE)
    b_img, b_lab, b_rw = render_scene(np.random.default_rng(123), SIZE)
    assert a_rw == b_rw and a_lab == b_lab
    assert a_img.tobytes() == b_img.tobytes()
    c_img, _, _ = render_scene(np.random.default_rng(124), SIZE)
    assert c_img.tobytes() != a_img.tobytes()


@pytest.mark.parametrize("roadwork", [True, False])
def test_labels_valid_and_match_the_scene_kind(roadwork: bool) -> None:
    for seed in range(20):
        img, labels, rw = render_scene(np.random.default_rng(seed), SIZE, roadwork=roadwork)
        assert rw is roadwork
        assert img.mode == "RGB" and img.size == SIZE
        if roadwork:
            assert len(labels) >= 1
        else:
            assert labels == []
        for cls, xc, yc, w, h in labels:
            assert 0 <= cls < len(CLASSES)
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= xc - w / 2 and xc + w / 2 <= 1 + 1e-9
            assert 0 <= yc - h / 2 and yc + h / 2 <= 1 + 1e-9
            assert w * SIZE[0] >= 4 - 1e-6 and h * SIZE[1] >= 4 - 1e-6


def test_roadwork_none_picks_both_kinds() -> None:
    kinds = {render_scene(np.random.default_rng(s), (160, 120))[2] for s in range(16)}
    assert kinds == {True, False}


def test_write_dataset_layout_and_determinism(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "true")
    data = write_dataset(tmp_path / "a", n_train=6, n_val=3, seed=5, size=SIZE)
    root = data.parent
    assert data == root / "data.yaml"
    for split, n in (("train", 6), ("val", 3)):
        images = sorted(p.stem for p in (root / "images" / split).glob("*.jpg"))
        labels = sorted(p.stem for p in (root / "labels" / split).glob("*.txt"))
        assert images == labels and len(images) == n
        for stem in labels:
            with Image.open(root / "images" / split / f"{stem}.jpg") as im:
                assert im.size == SIZE and im.mode == "RGB"
            for line in (root / "labels" / split / f"{stem}.txt").read_text().splitlines():
                parts = line.split()
                assert len(parts) == 5 and 0 <= int(parts[0]) < len(CLASSES)
                assert all(len(p.split(".")[1]) == 6 and 0.0 <= float(p) <= 1.0 for p in parts[1:])

    cfg: dict[str, Any] = yaml.safe_load(data.read_text())
    assert cfg["path"] == str(root) and Path(cfg["path"]).is_absolute()
    assert cfg["train"] == "images/train" and cfg["val"] == "images/val"
    assert cfg["names"] == dict(enumerate(CLASSES))

    import ultralytics.data.utils as udu

    monkeypatch.setattr(udu, "check_font", lambda *a, **k: None)  # it would try to download a font
    parsed = udu.check_det_dataset(str(data))
    assert parsed["nc"] == len(CLASSES) and parsed["names"] == dict(enumerate(CLASSES))
    assert Path(parsed["train"]) == root / "images" / "train"

    meta = json.loads((root / "meta.json").read_text())
    assert meta["images"] == {"train": 6, "val": 3}
    assert set(meta["counts"]["train"]) == set(CLASSES)
    assert 0.0 <= meta["roadwork_fraction"]["all"] <= 1.0

    again = write_dataset(tmp_path / "b", n_train=6, n_val=3, seed=5, size=SIZE).parent
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name != "data.yaml")
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file() and p.name != "data.yaml")
    for rel in files:
        assert (root / rel).read_bytes() == (again / rel).read_bytes(), rel


@pytest.mark.parametrize("level", [0, 1, 2, 3, None])
def test_augment_streetvision_returns_224_rgb(level: int | None) -> None:
    img, _, _ = render_scene(np.random.default_rng(1), (400, 300))
    a = augment_streetvision(np.random.default_rng(9), img, level=level)
    b = augment_streetvision(np.random.default_rng(9), img, level=level)
    assert a.size == (224, 224) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()


def test_augment_streetvision_levels_differ() -> None:
    img = Image.new("RGB", (300, 200), (120, 60, 30))
    centre = augment_streetvision(np.random.default_rng(0), img, level=0)
    assert (np.asarray(centre) == (120, 60, 30)).all()  # a plain centre crop of a flat image stays flat
    noisy = augment_streetvision(np.random.default_rng(0), img, level=3)
    assert np.asarray(noisy).reshape(-1, 3).std(axis=0).max() > 1


def test_randomized_scenes_are_deterministic_and_valid() -> None:
    a = render_scene(np.random.default_rng(7), SIZE, randomize=True)
    b = render_scene(np.random.default_rng(7), SIZE, randomize=True)
    assert a[0].tobytes() == b[0].tobytes() and a[1] == b[1]
    plain = render_scene(np.random.default_rng(7), SIZE)
    assert plain[0].tobytes() != a[0].tobytes()  # the randomization changes the draw
    for seed in range(10):
        for roadwork in (True, False):
            _img, labels, rw = render_scene(np.random.default_rng(seed), SIZE, roadwork=roadwork, randomize=True)
            assert rw is roadwork and (len(labels) >= 1 if roadwork else labels == [])


def test_augmented_scenes_keep_boxes_on_their_objects() -> None:
    """Boxes follow the validator augmentation's geometry: inside the 224x224 image, on non-background pixels."""
    boxes = 0
    for seed in range(12):
        img, labels, rw = render_scene_augmented(np.random.default_rng(seed), SIZE, roadwork=True)
        assert img.size == (224, 224) and rw
        px = np.asarray(img)
        for cls, xc, yc, w, h in labels:
            assert 0 <= cls < len(CLASSES) and 0 <= xc - w / 2 and xc + w / 2 <= 1 + 1e-9
            assert 0 <= yc - h / 2 and yc + h / 2 <= 1 + 1e-9 and w * 224 >= 4 - 1e-6 and h * 224 >= 4 - 1e-6
            x0, y0 = int((xc - w / 2) * 224), int((yc - h / 2) * 224)
            x1, y1 = max(x0 + 1, int((xc + w / 2) * 224)), max(y0 + 1, int((yc + h / 2) * 224))
            assert px[y0:y1, x0:x1].max() > 20  # not the black fill a rotation leaves
            boxes += 1
    assert boxes >= 12


def test_write_dataset_recipe(tmp_path: Path) -> None:
    recipe = Recipe(randomize=True, augment=0.5, quality=(40, 90))
    root = write_dataset(tmp_path / "r", n_train=8, n_val=2, seed=3, size=SIZE, recipe=recipe).parent
    meta = json.loads((root / "meta.json").read_text())
    assert meta["randomize"] is True and meta["augment"] == 0.5 and meta["jpeg_quality"] == [40, 90]
    sizes = set()
    for p in (root / "images" / "train").glob("*.jpg"):
        with Image.open(p) as im:
            sizes.add(im.size)
    assert sizes == {SIZE, (224, 224)}  # about half the scenes went through the validator augmentation
