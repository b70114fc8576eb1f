"""The mask module: block thresholds (paper Sec. III-C-1) and the masker's draws."""

import pytest
import torch

from mrife.labels import IGNORE
from mrife.masking import (BACKGROUND, EDGE, INTERIOR, PADDING, BlockMasker, block_counts, classify_blocks,
                           illustrative_tiles, masked_counts, zoom_window)


def block_with(n: int, block: int = 8) -> torch.Tensor:
    """A ``[block, block]`` mask with exactly ``n`` landslide pixels."""
    m = torch.zeros(block * block, dtype=torch.long)
    m[:n] = 1
    return m.view(block, block)


@pytest.mark.parametrize("n, expected", [(0, BACKGROUND), (6, BACKGROUND), (7, EDGE), (57, EDGE),
                                         (58, INTERIOR), (64, INTERIOR)])
def test_thresholds_block8(n, expected):
    got = int(classify_blocks(block_with(n))[0, 0])
    assert got == expected, f"{n} landslide pixels in an 8x8 block should be class {expected}, got {got}"


@pytest.mark.parametrize("n, expected", [(25, BACKGROUND), (26, EDGE), (230, EDGE), (231, INTERIOR)])
def test_thresholds_block16(n, expected):
    # 0.1 * 256 = 25.6 and 0.9 * 256 = 230.4
    got = int(classify_blocks(block_with(n, 16), block=16)[0, 0])
    assert got == expected, f"{n} pixels in a 16x16 block should be class {expected}, got {got}"


def test_classify_batch_layout():
    mask = torch.zeros(2, 16, 24, dtype=torch.long)
    mask[1, 8:16, 16:24] = 1  # image 1, block (1, 2) full
    mask[0, 0:4, 0:8] = 1  # image 0, block (0, 0) half
    classes = classify_blocks(mask)
    assert classes.shape == (2, 2, 3), f"expected [2, 2, 3] block classes, got {tuple(classes.shape)}"
    assert classes[1, 1, 2] == INTERIOR and classes[0, 0, 0] == EDGE
    assert int((classes != BACKGROUND).sum()) == 2, "only the two filled blocks should be non-background"


def test_classify_rejects_indivisible_size():
    with pytest.raises(ValueError, match="pad it to 16x16"):
        classify_blocks(torch.zeros(12, 16), block=8)


def random_blobs(B=3, H=64, W=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(B, 1, H // 16, W // 16, generator=g)
    up = torch.nn.functional.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
    return (up[:, 0] > 0.55).long()


@pytest.mark.parametrize("strategy, pos_classes", [("edge+back", {EDGE}), ("center+back", {INTERIOR}),
                                                   ("all", {EDGE, INTERIOR})])
@pytest.mark.parametrize("block", [8, 16])
def test_masker_counts_and_indices(strategy, pos_classes, block):
    masks = random_blobs()
    images = torch.randn(3, 3, 64, 64)
    out = BlockMasker(block, strategy, seed=1)(images, masks)
    B, h, w = out.classes.shape
    flat = out.classes.reshape(-1)
    assert set(flat[out.idx_pos].tolist()) <= pos_classes, "maskList_1 holds blocks of the wrong class"
    assert set(flat[out.idx_neg].tolist()) <= {BACKGROUND}, "maskList_0 must hold background blocks only"
    for b in range(B):
        n_pos = int((out.idx_pos // (h * w) == b).sum())
        n_neg = int((out.idx_neg // (h * w) == b).sum())
        assert n_pos == n_neg, f"image {b}: {n_pos} class-1 vs {n_neg} class-0 blocks masked"
        candidates = int(torch.isin(out.classes[b], torch.tensor(sorted(pos_classes))).sum())
        if candidates:
            assert n_pos >= 1, f"image {b} has {candidates} candidate blocks but none was masked"
    # The masked blocks, and only they, are zero in the output image.
    zeroed = (out.images == 0).all(1)  # [B, H, W]
    per_block = zeroed.reshape(B, h, block, w, block).all(4).all(2).reshape(-1)
    expected = torch.zeros(B * h * w, dtype=torch.bool)
    expected[torch.cat([out.idx_pos, out.idx_neg])] = True
    assert torch.equal(per_block, expected), "zeroed blocks differ from the recorded mask lists"
    kept = ~zeroed
    assert torch.equal(out.images[kept.unsqueeze(1).expand_as(images)], images[kept.unsqueeze(1).expand_as(images)])


def test_masker_half_of_edges_and_caps():
    mask = torch.zeros(1, 32, 32, dtype=torch.long)
    mask[0, :4, :] = 1  # 4 edge blocks in the top row, 12 background blocks
    out = BlockMasker(8)(torch.ones(1, 3, 32, 32), mask)
    assert len(out.idx_pos) == 2, f"half of 4 edge blocks should be masked, got {len(out.idx_pos)}"
    full = torch.ones(1, 32, 32, dtype=torch.long)
    full[0, :4, :] = 0  # 4 edge-ish blocks, no background block at all
    out = BlockMasker(8)(torch.ones(1, 3, 32, 32), full)
    assert len(out.idx_pos) == len(out.idx_neg) == 0, "without background blocks nothing can be paired"


def test_masker_leaves_slide_free_image_intact():
    images = torch.randn(1, 3, 32, 32)
    out = BlockMasker(8)(images, torch.zeros(1, 32, 32, dtype=torch.long))
    assert len(out.idx_pos) == 0 and torch.equal(out.images, images)


def test_masker_is_seeded():
    masks, images = random_blobs(), torch.randn(3, 3, 64, 64)
    a, b = BlockMasker(seed=5)(images, masks), BlockMasker(seed=5)(images, masks)
    c = BlockMasker(seed=6)(images, masks)
    assert torch.equal(a.idx_pos, b.idx_pos) and torch.equal(a.idx_neg, b.idx_neg), "same seed, other draw"
    assert not (torch.equal(a.idx_pos, c.idx_pos) and torch.equal(a.idx_neg, c.idx_neg)), "seed ignored"


def test_masker_rejects_bad_strategy():
    with pytest.raises(ValueError, match="edge\\+back"):
        BlockMasker(strategy="edges")


def test_blocks_with_padding_are_their_own_class_and_never_masked():
    mask = torch.zeros(1, 16, 32, dtype=torch.long)
    mask[0, :, 4:12] = 1  # an edge and interior band
    mask[0, :, 24:] = IGNORE  # the last 8 columns are padding
    mask[0, 8:, 20:24] = IGNORE  # one more padded corner inside a block
    classes = classify_blocks(mask, 8)
    assert (classes[0, :, 3] == PADDING).all() and classes[0, 1, 2] == PADDING, f"padding blocks: {classes}"
    assert classes[0, 0, 2] == BACKGROUND, "a block without padding keeps its class"
    images = torch.randn(1, 3, 16, 32)
    for seed in range(5):
        out = BlockMasker(8, "all", 1.0, seed=seed)(images, mask)
        picked = torch.cat([out.idx_pos, out.idx_neg])
        assert not (classes.flatten()[picked] == PADDING).any(), "a padding block was masked"


def test_positions_map_the_mask_lists_image_by_image():
    masks = random_blobs()
    out = BlockMasker(8, "edge+back", seed=1)(torch.randn(3, 3, 64, 64), masks)
    for i in range(3):
        positions = out.positions(i)
        zeroed = (out.images[i] == 0).all(0).reshape(8, 8, 8, 8).all(3).all(1)  # [h, w]: the blocks set to 0
        assert torch.equal(positions > 0, zeroed), f"image {i}: the map must mark exactly the masked blocks"
        assert set(out.classes[i][positions == 1].tolist()) <= {EDGE}, "1 marks maskList_1 (edge blocks)"
        assert set(out.classes[i][positions == 2].tolist()) <= {BACKGROUND}, "2 marks maskList_0 (background)"
        assert int((positions == 1).sum()) == int((out.idx_pos // 64 == i).sum())


def test_block_counts_name_every_class():
    classes = torch.tensor([[BACKGROUND, EDGE], [EDGE, PADDING]])
    assert block_counts(classes) == {"background": 1, "edge": 2, "interior": 0, "padding": 1}


def test_illustrative_tiles_prefer_a_body_with_its_boundary():
    masks = torch.zeros(3, 64, 64, dtype=torch.long)
    masks[1, 14:42, 14:42] = 1  # 9 interior blocks, 12 edge blocks
    masks[2, 10:54, 10:54] = 1  # 16 interior blocks, 20 edge blocks
    assert illustrative_tiles(masks, 8, n=2) == [2, 1], "the tile with the most of both kinds of block comes first"
    assert illustrative_tiles(masks, 8, n=5) == [2, 1, 0], "n larger than the tiles gives every tile"


def test_zoom_window_shows_every_class_and_picks_a_typical_block_of_each():
    mask = torch.zeros(128, 128, dtype=torch.long)
    mask[36:100, 44:108] = 1  # a square body; its outline cuts blocks at 4 px (edge blocks of 32 pixels)
    classes = classify_blocks(mask, 8)
    (r0, c0), chosen = zoom_window(classes, mask, 8, size=64)
    window = classes[r0 : r0 + 8, c0 : c0 + 8]
    assert set(window.unique().tolist()) == {BACKGROUND, EDGE, INTERIOR}, "the zoom must show the three classes"
    pixels = mask.view(16, 8, 16, 8).sum((1, 3))
    for k, (r, c) in chosen.items():
        assert r0 <= r < r0 + 8 and c0 <= c < c0 + 8, "the typical blocks lie in the window"
        assert classes[r, c] == k, f"the block chosen for class {k} is of that class"
    assert pixels[chosen[BACKGROUND]] == 0 and pixels[chosen[INTERIOR]] == 64
    assert pixels[chosen[EDGE]] == 32, "the edge block nearest half full: the outline cuts it in two"


def test_masked_counts_per_tile_match_the_masker():
    masks = torch.zeros(3, 48, 48, dtype=torch.long)
    masks[1, 4:28, 4:28] = 1  # 12 edge blocks round 4 interior ones, 20 background blocks
    per_tile = masked_counts(BlockMasker(8, "edge+back", 0.5, seed=0), masks, chunk=2)
    assert [sum(row[name] for name in ("background", "edge", "interior", "padding")) for row in per_tile] == [36] * 3
    assert per_tile[0]["masked edge"] == per_tile[0]["masked background"] == 0, "no edge block: nothing masked"
    assert per_tile[1]["edge"] == 12 and per_tile[1]["masked edge"] == 6, "half of the 12 edge blocks"
    assert per_tile[1]["masked background"] == 6, "as many background blocks as edge blocks"
