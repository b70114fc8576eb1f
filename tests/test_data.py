"""Tests of mrife.data: folder reading and its errors, tiling and the scene split,
preprocessing, the tile dataset and the Sichuan downloader (local files only)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mrife.data import (
    DataError,
    FolderDataset,
    Scene,
    TileDataset,
    print_table_one,
    read_image,
    read_mask,
    sichuan,
    split_by_scene,
    table_one,
    tile_scenes,
)
from mrife.data.sichuan import MIRROR_ENV, registry
from mrife.config import load_profile
from mrife.data.transforms import MEAN, STD, equalize, joint_flip_rot, pad_and_resize
from mrife.labels import IGNORE
from mrife.loaders import build_splits

# the real set lives beside the project (../shared/data), or where MRIFE_DATA_MIRROR says
MIRROR = Path(os.environ.get(MIRROR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
REAL = MIRROR / "sichuan-landslide"
needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason=f"the Sichuan scenes are not at {REAL}: set {MIRROR_ENV} to run these tests")


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def square_mask(h=8, w=8) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[2:5, 3:6] = 1
    return mask


def make_folder(root: Path, n=2, h=8, w=8) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        save(root / "images" / f"a{i}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        save(root / "masks" / f"a{i}.png", square_mask(h, w) * 255)
    return root


# ---------------------------------------------------------------- reading files


def stretched(values: np.ndarray) -> np.ndarray:
    """16-bit values scaled between their 1st and 99th percentiles (mrife.data.raster)."""
    low, high = np.percentile(values.astype(np.float64), [1, 99])
    return np.clip((values - low) / (high - low), 0, 1)


def test_read_image_converts_every_mode_to_rgb_float(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], -1)
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    gray16 = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000).astype(np.uint16)
    cases = {
        "rgb.png": (save(tmp_path / "rgb.png", rgb), rgb / 255.0),
        "rgba.png": (save(tmp_path / "rgba.png", rgba), rgb / 255.0),
        "gray.tif": (save(tmp_path / "gray.tif", gray), np.repeat(gray[..., None] / 255.0, 3, -1)),
        "gray16.png": (save(tmp_path / "gray16.png", gray16), np.repeat(stretched(gray16)[..., None], 3, -1)),
    }
    for name, (path, expected) in cases.items():
        image = read_image(path)
        assert image.dtype == np.float32 and image.shape == (4, 5, 3), f"{name}: expected float32 [4, 5, 3], got {image.dtype} {image.shape}"
        assert np.allclose(image, expected, atol=1e-6), f"{name}: pixel values not scaled to [0, 1] as expected"


def test_read_mask_binarizes_01_0255_and_colour_on_black(tmp_path):
    mask = square_mask()
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[mask == 1] = (255, 0, 255)
    for name, array in {"m01.png": mask, "m255.png": mask * 255, "colour.png": colour}.items():
        read = read_mask(save(tmp_path / name, array))
        assert read.dtype == np.uint8, f"{name}: expected uint8, got {read.dtype}"
        assert np.array_equal(read, mask), f"{name}: expected the 0/1 square mask back"


def test_mask_with_three_values_names_the_file(tmp_path):
    mask = square_mask() * 255
    mask[0, 0] = 128
    path = save(tmp_path / "three.png", mask)
    with pytest.raises(DataError, match="three.png.*3 distinct values"):
        read_mask(path)


def test_truncated_file_names_the_file(tmp_path):
    path = save(tmp_path / "img.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="img.png.*unreadable"):
        read_image(path)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="garbage.png.*unreadable"):
        read_image(garbage)


# ---------------------------------------------------------------- folders


def test_folder_pairs_same_names_across_extensions(tmp_path):
    root = make_folder(tmp_path)
    os.remove(root / "images" / "a1.png")
    save(root / "images" / "a1.jpg", np.full((8, 8, 3), 100, np.uint8))
    (root / "images" / "notes.txt").write_text("not an image: ignored")
    data = FolderDataset(root)
    assert data.names == ["a0", "a1"], f"expected scenes a0, a1, got {data.names}"
    scene = data.scene(1)
    assert scene.image.shape == (8, 8, 3) and np.array_equal(scene.mask, square_mask()), "a1.jpg should pair with masks/a1.png"


@needs_real
def test_folder_pairs_real_sichuan_names(tmp_path):
    for sub, stem in [("images", "Landslide{}"), ("masks", "LandslideLabel{}")]:
        (tmp_path / sub).mkdir()
        for number in ("001", "002"):
            shutil.copy(REAL / sub / f"{stem.format(number)}.png", tmp_path / sub)
    data = FolderDataset(tmp_path)
    assert data.names == ["Landslide001", "Landslide002"], f"expected LandslideNNN names, got {data.names}"
    assert data.paths(1)[1].name == "LandslideLabel002.png", "Landslide002 should pair with LandslideLabel002"
    scene = data.scene(1)
    assert scene.image.shape == (1024, 1024, 3), f"expected a 1024x1024 RGB image, got {scene.image.shape}"
    assert set(np.unique(scene.mask)) == {0, 1}, "the magenta-on-black mask should become {0, 1}"


def test_image_without_mask_names_the_image(tmp_path):
    root = make_folder(tmp_path)
    os.remove(root / "masks" / "a1.png")
    with pytest.raises(DataError, match=r"a1\.png: image without a mask"):
        FolderDataset(root)


def test_mask_without_image_names_the_mask(tmp_path):
    root = make_folder(tmp_path)
    save(root / "masks" / "LandslideLabel007.png", square_mask())
    with pytest.raises(DataError, match=r"LandslideLabel007\.png: mask without an image.*Landslide007"):
        FolderDataset(root)


def test_size_mismatch_names_the_mask(tmp_path):
    root = make_folder(tmp_path)
    save(root / "masks" / "a1.png", square_mask(8, 9))
    with pytest.raises(DataError, match=r"a1\.png: mask is 9x8.*image .*a1\.png is 8x8"):
        FolderDataset(root)


def test_empty_and_missing_folders_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="images: folder not found"):
        FolderDataset(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="images: no image files"):
        FolderDataset(tmp_path)


def test_unreadable_scene_is_reported_when_read(tmp_path):
    root = make_folder(tmp_path, h=64, w=64)
    path = root / "images" / "a0.png"
    path.write_bytes(path.read_bytes()[:-200])  # header intact: the folder opens, reading fails
    data = FolderDataset(root)
    with pytest.raises(DataError, match=r"a0\.png: unreadable"):
        data.scene(0)


# ---------------------------------------------------------------- Sichuan


@needs_real
def test_sichuan_mirror_lists_36_scenes(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    data = sichuan(mirror=MIRROR)
    assert len(data) == 36, f"expected 36 scenes, got {len(data)}"
    assert data.names[0] == "Landslide001" and data.names[-1] == "Landslide036", f"unexpected names {data.names[:2]}..."
    scene = data.scene(5)
    assert scene.image.shape == (1024, 1024, 3) and scene.mask.shape == (1024, 1024), "expected 1024x1024 scenes"
    assert set(np.unique(scene.mask)) == {0, 1}, "expected a {0, 1} mask"
    monkeypatch.setenv(MIRROR_ENV, str(MIRROR))
    assert len(sichuan()) == 36, "MRIFE_DATA_MIRROR should be used when mirror= is not given"


def link_copy(target: Path, replace: str | None = None) -> Path:
    """A folder of symlinks to the real files; `replace` becomes a different file."""
    for name in registry():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        if name == replace:
            shutil.copy(REAL / name, target / name)
            with open(target / name, "ab") as file:
                file.write(b"\0")  # one byte more: a different sha256
        else:
            (target / name).symlink_to(REAL / name)
    return target


@needs_real
def test_sichuan_mirror_checksum_mismatch_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    link_copy(tmp_path / "sichuan-landslide", replace="masks/LandslideLabel012.png")
    with pytest.raises(DataError, match=r"LandslideLabel012\.png: sha256 does not match"):
        sichuan(mirror=tmp_path)
    with pytest.raises(FileNotFoundError, match="sichuan-landslide"):
        sichuan(mirror=tmp_path / "elsewhere")


@needs_real
def test_sichuan_download_verifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    source = link_copy(tmp_path / "source")
    data = sichuan(cache_dir=tmp_path / "cache", base_url=source.as_uri() + "/")
    assert len(data) == 36, f"expected 36 downloaded scenes, got {len(data)}"
    assert data.root == tmp_path / "cache" / "sichuan-landslide", f"unexpected cache folder {data.root}"
    shutil.rmtree(source)  # cached now: no second download needed
    again = sichuan(cache_dir=tmp_path / "cache", base_url=source.as_uri() + "/")
    assert again.names == data.names, "the cached copy should be used without the source"


@needs_real
def test_sichuan_download_mismatch_and_offline_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    source = link_copy(tmp_path / "source", replace="images/Landslide001.png")
    with pytest.raises(DataError, match=r"images/Landslide001\.png: the downloaded file .* does not match"):
        sichuan(cache_dir=tmp_path / "cache", base_url=source.as_uri() + "/")
    offline = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(FileNotFoundError, match=f"could not download images/Landslide001.png.*{MIRROR_ENV}"):
        sichuan(cache_dir=tmp_path / "cache2", base_url=offline)


# ---------------------------------------------------------------- tiling and split


def scene(name: str, h: int, w: int, slide: bool, seed: int = 0) -> Scene:
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    if slide:
        mask[h // 3 : h // 2, w // 3 : w // 2] = 1
    return Scene(name, rng.random((h, w, 3), dtype=np.float32), mask)


def test_tiles_cover_the_scene_with_edge_aligned_last_tiles():
    s = scene("s", 100, 70, True)
    tiles = tile_scenes([s], size=32, stride=32)
    starts = sorted({(t.y, t.x) for t in tiles})
    assert starts == [(y, x) for y in (0, 32, 64, 68) for x in (0, 32, 38)], f"unexpected tile offsets {starts}"
    rebuilt = np.zeros_like(s.image)
    for t in tiles:
        assert t.scene == "s" and t.image.shape == (32, 32, 3), "tiles keep the scene name and size"
        rebuilt[t.y : t.y + 32, t.x : t.x + 32] = t.image
    assert np.array_equal(rebuilt, s.image), "the tiles should cover every pixel of the scene"


def test_small_scene_becomes_one_padded_tile():
    s = scene("small", 20, 30, True)
    (tile,) = tile_scenes([s], size=32)
    assert np.array_equal(tile.image[:20, :30], s.image), "the scene should sit at the top-left of its tile"
    assert not tile.image[20:].any(), "the padded image should be zero"
    assert (tile.mask[20:] == IGNORE).all() and (tile.mask[:, 30:] == IGNORE).all(), "padding should be IGNORE"
    assert np.array_equal(tile.mask[:20, :30], s.mask), "the label should be the scene's"
    assert tile.has_slide, "a tile with landslide pixels has has_slide True"


def test_padded_edges_tile_every_pixel_once():
    s = scene("wide", 40, 70, True)
    tiles = tile_scenes([s], size=32, pad_edges=True)
    assert [(t.y, t.x) for t in tiles] == [(0, 0), (0, 32), (0, 64), (32, 0), (32, 32), (32, 64)]
    covered = sum(int((t.mask != IGNORE).sum()) for t in tiles)
    assert covered == 40 * 70, f"every scene pixel should be in exactly one tile, {covered} counted"
    shifted = tile_scenes([s], size=32)
    assert [(t.y, t.x) for t in shifted][-1] == (8, 38), "without pad_edges the last tile ends at the edge"


def test_validation_and_test_tiles_do_not_overlap():
    cfg = load_profile("smoke", ["data.tile_stride=32"])  # training tiles overlap by half
    splits = build_splits(cfg, progress=False)
    for part in ("val", "test"):
        seen = set()
        for t in splits[part]:
            pixels = {(t.scene, t.y + i, t.x + j) for i in range(0, 64, 8) for j in range(0, 64, 8)}
            assert not pixels & seen, f"{part} tiles overlap at {t}"
            seen |= pixels
    starts = {(t.y, t.x) for t in splits["train"]}
    assert (0, 32) in starts, "training tiles keep the configured stride"
    assert {t.scene for t in splits["train"]}.isdisjoint({t.scene for t in splits["test"]})


def twenty_scenes_tiles():
    scenes = [scene(f"s{i:02d}", 32, 64, slide=i % 4 != 0, seed=i) for i in range(20)]  # 15 slide, 5 free
    return tile_scenes(scenes, size=32)


def test_split_is_by_scene_stratified_and_seeded():
    tiles = twenty_scenes_tiles()
    splits = split_by_scene(tiles, seed=0)
    parts = {p: {t.scene for t in splits[p]} for p in ("train", "val", "test")}
    assert sum(len(v) for v in parts.values()) == 20, "every scene should fall in exactly one part"
    assert not (parts["train"] & parts["val"] or parts["train"] & parts["test"] or parts["val"] & parts["test"]), "a scene in two parts"
    assert sum(len(v) for v in splits.values()) == len(tiles), "every tile should be kept"
    free = {f"s{i:02d}" for i in range(0, 20, 4)}
    assert [len(parts[p] & free) for p in ("train", "val", "test")] == [3, 1, 1], "the 5 landslide-free scenes should split 3:1:1"
    assert [len(parts[p]) for p in ("train", "val", "test")] == [12, 4, 4], "20 scenes should split 12:4:4"
    again = split_by_scene(tiles, seed=0)
    assert all([t.scene for t in again[p]] == [t.scene for t in splits[p]] for p in parts), "same seed, same split"
    other = split_by_scene(tiles, seed=1)
    assert any({t.scene for t in other[p]} != parts[p] for p in parts), "another seed should give another split"


def test_split_needs_three_scenes_and_fills_every_part():
    three = tile_scenes([scene(f"s{i}", 32, 32, i == 0) for i in range(3)], 32)
    splits = split_by_scene(three)
    assert all(len(splits[p]) == 1 for p in splits), f"3 scenes should give 1/1/1, got { {p: len(v) for p, v in splits.items()} }"
    with pytest.raises(DataError, match="at least 3 scenes"):
        split_by_scene(three[:2])
    with pytest.raises(ValueError, match="three positive numbers"):
        split_by_scene(three, ratios=(1, 0, 0))


def test_table_one_counts_slide_and_non_slide_tiles(capsys):
    tiles = twenty_scenes_tiles()
    splits = split_by_scene(tiles, seed=0)
    table = table_one(splits)
    assert list(table.index) == ["Slide", "Non-slide"] and list(table.columns) == ["Training", "Validation", "Test"], "Table I layout"
    for column, part in zip(table.columns, ("train", "val", "test")):
        slide = sum(t.has_slide for t in splits[part])
        assert table.loc["Slide", column] == slide, f"{column}: expected {slide} slide tiles"
        assert table.loc["Non-slide", column] == len(splits[part]) - slide, f"{column}: wrong non-slide count"
    assert table.to_numpy().sum() == len(tiles), "the table should count every tile once"
    print_table_one(splits)
    assert "Non-slide" in capsys.readouterr().out, "print_table_one should print the table"


# ---------------------------------------------------------------- transforms


def test_pad_and_resize_keeps_the_aspect():
    image = np.ones((40, 80, 3), np.float32)
    mask = np.zeros((40, 80), np.uint8)
    mask[10:30, 20:40] = 1  # a 20 x 20 square
    out_image, out_mask = pad_and_resize(image, mask, 64)
    assert out_image.shape == (64, 64, 3) and out_mask.shape == (64, 64), "expected 64x64 outputs"
    assert out_image[:30].min() > 0.99 and out_image[34:].max() < 0.01, "the padding should be the bottom half"
    assert set(np.unique(out_mask)) == {0, 1, IGNORE}, "the mask should stay {0, 1}, the padding IGNORE"
    assert (out_mask[34:] == IGNORE).all(), "the padded bottom half should be IGNORE"
    rows, cols = np.nonzero(out_mask == 1)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert height == width == 16, f"the 20x20 square should become 16x16, got {height}x{width}"


def test_equalize_flattens_the_histogram():
    rng = np.random.default_rng(0)
    image = (0.45 + 0.1 * rng.random((64, 64, 3))).astype(np.float32)  # low contrast

    def distance_to_uniform(x):  # Kolmogorov distance of the values to U(0, 1)
        values = np.sort(x.ravel())
        return np.abs(values - np.linspace(0, 1, values.size)).max()

    out = equalize(image)
    assert out.dtype == np.float32 and out.shape == image.shape, "equalize keeps shape and dtype"
    before, after = distance_to_uniform(image), distance_to_uniform(out)
    assert after < 0.1 and before > 0.4, f"equalized values should be near uniform: distance {before:.2f} -> {after:.2f}"
    assert out.min() < 0.05 and out.max() > 0.95, "equalized values should span [0, 1]"


@pytest.mark.parametrize("as_numpy", [False, True])
def test_joint_flip_rot_keeps_image_and_mask_aligned(as_numpy):
    image = torch.zeros(3, 6, 8)
    mask = torch.zeros(6, 8, dtype=torch.long)
    image[:, 1, 2] = 1.0
    mask[1, 2] = 1
    if as_numpy:
        image, mask = image.numpy(), mask.numpy()
    for hflip in (False, True):
        for vflip in (False, True):
            for k in range(4):
                out_image, out_mask = joint_flip_rot(image, mask, hflip, vflip, k)
                where_image = np.argwhere(np.asarray(out_image[0]) == 1).tolist()
                where_mask = np.argwhere(np.asarray(out_mask) == 1).tolist()
                assert where_image == where_mask, f"hflip={hflip} vflip={vflip} k={k}: marker moved apart"
    _, turned = joint_flip_rot(image, mask, False, False, 1)
    assert np.argwhere(np.asarray(turned) == 1).tolist() == [[5, 1]], "k=1 turns counter-clockwise"


# ---------------------------------------------------------------- dataset


def marker_tiles(n=6, size=24):
    tiles = []
    for i in range(n):
        s = scene(f"m{i}", size, size, False, seed=i)
        s.image[:] = 0.2
        s.image[2 + i, 5:9] = 1.0  # a bright bar where the mask is set
        s.mask[2 + i, 5:9] = 1
        tiles += tile_scenes([s], size)
    return tiles


def test_tile_dataset_items_follow_the_contract():
    data = TileDataset(marker_tiles(), input_size=32, equalize=True)
    item = data[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32, "image float32 [3, S, S]"
    assert item["mask"].shape == (32, 32) and item["mask"].dtype == torch.int64, "mask int64 [S, S]"
    assert item["scene"] == "m0", "the item names its scene"
    raw = item["image"] * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5, "un-normalizing should give [0, 1]"
    assert set(item["mask"].unique().tolist()) == {0, 1}, "mask values {0, 1}"
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 32, 32) and len(batch["scene"]) == 4, "items should collate"


def test_augmentation_is_deterministic_per_epoch_and_aligned():
    data = TileDataset(marker_tiles(), input_size=24, equalize=False, augment=True, seed=3)
    first = [data[i]["mask"] for i in range(len(data))]
    assert all(torch.equal(a, data[i]["mask"]) for i, a in enumerate(first)), "same epoch, same item"
    draws = {data.augmentation(i) for i in range(len(data))}
    data.set_epoch(1)
    draws_1 = {data.augmentation(i) for i in range(len(data))}
    assert len(draws | draws_1) > 2, "augmentations should vary over items and epochs"
    assert any(not torch.equal(first[i], data[i]["mask"]) for i in range(len(data))), "a new epoch should change some items"
    for i in range(len(data)):
        item = data[i]
        bright = item["image"][0] > item["image"][0].mean()
        assert torch.equal(bright, item["mask"].bool()), f"item {i}: image and mask were not transformed alike"
    other = TileDataset(marker_tiles(), input_size=24, equalize=False, augment=True, seed=3)
    other.set_epoch(1)
    assert all(torch.equal(other[i]["image"], data[i]["image"]) for i in range(len(data))), "(seed, epoch, index) fixes an item"
