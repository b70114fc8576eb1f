"""The mask module of MRIFE (paper Sec. III-C-1, Fig. 2).

An image of ``H x W`` pixels is cut into ``b x b`` blocks, ``b`` equal to the encoder's
output stride, so that block ``(r, c)`` is feature point ``(r, c)`` of the feature map.
Each block is classified by its number ``n`` of landslide pixels: background
(``n < 0.1 b^2``), interior (``n > 0.9 b^2``) or edge (otherwise); a block that holds
padding (label ``IGNORE``) is a padding block, never masked nor contrasted. The masker then zeroes
an equal number of class-1 and class-0 blocks per image and records where
(the paper's ``maskList_1`` and ``maskList_0``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mrife.distributed import batch_share
from mrife.labels import IGNORE, LANDSLIDE

BACKGROUND, EDGE, INTERIOR, PADDING = 0, 1, 2, 3
CLASS_NAMES = {BACKGROUND: "background", EDGE: "edge", INTERIOR: "interior", PADDING: "padding"}

# Which block classes are masked as class 1 for each strategy (Table VI); class 0 is
# always background. "all" masks landslide blocks of both kinds against background.
STRATEGIES = {"edge+back": (EDGE,), "center+back": (INTERIOR,), "all": (EDGE, INTERIOR)}


def classify_blocks(mask: Tensor, block: int = 8) -> Tensor:
    """Classify the ``block x block`` blocks of a binary mask.

    Args:
        mask: ``[H, W]`` or ``[B, H, W]`` with values in {0, 1, IGNORE}; H and W divisible
            by ``block``.
        block: block size in pixels (8 in the paper; 16 in Table V).

    Returns:
        int64 ``[h, w]`` or ``[B, h, w]`` (``h = H / block``): 0 background, 1 edge,
        2 interior, 3 padding (any ``IGNORE`` pixel). For ``block = 8``: ``n < 7``,
        ``7 <= n <= 57``, ``n > 57``.
    """
    if mask.dim() not in (2, 3):
        raise ValueError(f"mask must be [H, W] or [B, H, W], got shape {tuple(mask.shape)}")
    H, W = mask.shape[-2:]
    if H % block or W % block:
        raise ValueError(
            f"mask size {H}x{W} is not divisible by the block size {block}: pad it to "
            f"{-(-H // block) * block}x{-(-W // block) * block}"
        )
    m = mask.reshape(-1, 1, H, W)

    def per_block(pixels: Tensor) -> Tensor:  # [B, 1, H, W] bool -> [B, h, w] counts
        return F.avg_pool2d(pixels.float(), block, divisor_override=1).round().long()[:, 0]

    counts = per_block(m == LANDSLIDE)
    area = block * block
    classes = torch.full_like(counts, EDGE)
    classes[counts * 10 < area] = BACKGROUND  # n < 0.1 b^2, in integers
    classes[counts * 10 > 9 * area] = INTERIOR  # n > 0.9 b^2
    classes[per_block(m == IGNORE) > 0] = PADDING
    return classes if mask.dim() == 3 else classes[0]


def illustrative_tiles(masks: Tensor, block: int = 8, n: int = 3) -> list[int]:
    """The ``n`` tiles of ``masks`` ``[N, H, W]`` that best show a landslide body and its
    boundary together: the largest ``min(edge blocks, interior blocks)``, ties in tile
    order. The figures of chapters 6, 8 and 9 draw these tiles of the test split."""
    classes = classify_blocks(masks, block).flatten(1)  # [N, h*w]
    both = torch.minimum((classes == EDGE).sum(1), (classes == INTERIOR).sum(1))  # [N]
    return torch.argsort(both, descending=True, stable=True)[:n].tolist()


def block_counts(classes: Tensor) -> dict[str, int]:
    """How many blocks of each class (:data:`CLASS_NAMES`) ``classes`` holds, any shape."""
    counts = torch.bincount(classes.flatten(), minlength=len(CLASS_NAMES))
    return {name: int(counts[k]) for k, name in CLASS_NAMES.items()}


def zoom_window(classes: Tensor, mask, block: int, size: int = 64) -> tuple[tuple[int, int], dict[int, tuple[int, int]]]:
    """Where to zoom into one image's blocks, as the paper's Fig. 2 does, and a typical
    block of each class there (chapter 3's figure).

    The window is ``size // block`` blocks a side and shows all three classes, at least
    12 blocks of each where it can, along a clean stretch of the outline: among such
    windows, the one whose class changes least often from a block to its neighbour. The
    typical block of a class is the one whose landslide pixel count is nearest to 0
    (background), half the block (edge) or the full block (interior), the nearest to the
    window's centre among equals.

    Args:
        classes: int64 ``[h, w]``, :func:`classify_blocks` of ``mask``.
        mask: ``[H, W]`` in {0, 1} (tensor or array), ``H = h * block``.

    Returns:
        ``(r0, c0)``, the window's top-left block, and class -> ``(row, column)`` of its
        typical block, both in block coordinates of the image.
    """
    side, (h, w) = size // block, classes.shape
    best, corner = None, (0, 0)
    for r in range(h - side + 1):
        for c in range(w - side + 1):
            win = classes[r : r + side, c : c + side]
            rarest = int(torch.bincount(win.flatten(), minlength=3).min())
            changes = int((win[1:] != win[:-1]).sum() + (win[:, 1:] != win[:, :-1]).sum())
            key = (min(rarest, 12), -changes)
            if best is None or key > best:
                best, corner = key, (r, c)
    r0, c0 = corner
    window = classes[r0 : r0 + side, c0 : c0 + side]
    n_pixels = torch.as_tensor(mask).reshape(h, block, w, block).sum((1, 3))  # landslide pixels per block
    centre, target = (side - 1) / 2, {BACKGROUND: 0, EDGE: block * block // 2, INTERIOR: block * block}
    chosen = {}
    for k in (BACKGROUND, EDGE, INTERIOR):
        rows, cols = (window == k).nonzero(as_tuple=True)
        off = (n_pixels[r0 + rows, c0 + cols] - target[k]).abs().double()
        i = int((off * 1000 + (rows - centre) ** 2 + (cols - centre) ** 2).argmin())  # count first, then distance
        chosen[k] = (r0 + int(rows[i]), c0 + int(cols[i]))
    return corner, chosen


def masked_counts(masker: "BlockMasker", masks: Tensor, chunk: int = 64) -> list[dict[str, int]]:
    """Per tile of ``masks`` ``[N, H, W]``: its blocks of each class (:func:`block_counts`)
    and how many edge and background blocks ``masker`` blanks ("masked edge", "masked
    background"). The masker runs on chunks of ``chunk`` tiles, on blank images (only the
    masks matter), so its random draws depend on ``chunk``."""
    per_tile = []
    for start in range(0, len(masks), chunk):
        part = masks[start : start + chunk].long()
        out = masker(torch.zeros(len(part), 1, *part.shape[-2:]), part)
        S = out.classes[0].numel()  # blocks per tile
        for i, c in enumerate(out.classes):
            row = block_counts(c)
            row["masked edge"] = int((out.idx_pos // S == i).sum())
            row["masked background"] = int((out.idx_neg // S == i).sum())
            per_tile.append(row)
    return per_tile


class MaskedBatch(NamedTuple):
    """What the masker returns.

    Attributes:
        images: ``[B, 3, H, W]`` the input with the chosen blocks set to 0.
        idx_pos: int64 ``[N1]`` flat indices into ``B*h*w`` of the masked class-1 blocks
            (``maskList_1``), ``b * h*w + r * w + c``.
        idx_neg: int64 ``[N0]`` the same for the masked class-0 blocks (``maskList_0``);
            per image as many as class 1.
        classes: int64 ``[B, h, w]`` the block classes (0/1/2/3).
    """

    images: Tensor
    idx_pos: Tensor
    idx_neg: Tensor
    classes: Tensor

    def positions(self, i: int) -> Tensor:
        """Image ``i``'s masked blocks as an int64 ``[h, w]`` map: 1 where ``maskList_1``
        holds the block, 2 where ``maskList_0`` does, 0 elsewhere (Fig. 2's lists)."""
        h, w = self.classes.shape[1:]
        flat = torch.zeros(h * w, dtype=torch.long)
        for value, idx in ((1, self.idx_pos.cpu()), (2, self.idx_neg.cpu())):
            flat[idx[idx // (h * w) == i] % (h * w)] = value  # flat b*h*w + r*w + c -> r*w + c of image i
        return flat.view(h, w)


class BlockMasker:
    """Masks an equal number of landslide and background blocks per image.

    Per image with ``E`` candidate class-1 blocks and ``G`` background blocks, it masks
    ``n = min(max(1, round(ratio * E)), G)`` of each (0 when ``E == 0``: a landslide-free
    image is left intact and contributes nothing to the auxiliary losses).

    Args:
        block: block size in pixels; must equal the encoder's output stride (8 or 16).
        strategy: ``"edge+back"`` (paper default), ``"center+back"`` or ``"all"`` (Table VI).
        ratio: share of the candidate class-1 blocks masked (NOTES.md: one half).
        seed: seed of the masker's own generator (draws are reproducible per call order),
            used when a call passes no generator.
    """

    def __init__(self, block: int = 8, strategy: str = "edge+back", ratio: float = 0.5, seed: int = 0):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown mask strategy {strategy!r}; valid: {sorted(STRATEGIES)}")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"mask ratio must be in (0, 1], got {ratio}")
        self.block, self.strategy, self.ratio = block, strategy, ratio
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, images: Tensor, masks: Tensor, generator: torch.Generator | None = None) -> MaskedBatch:
        """Mask a batch: ``images [B, 3, H, W]`` (normalized), ``masks [B, H, W]`` in {0, 1, IGNORE}.

        ``generator`` (a CPU generator) draws the blocks; by default the masker's own.
        """
        if images.dim() != 4 or masks.shape != (images.shape[0], *images.shape[-2:]):
            raise ValueError(
                f"expected images [B, 3, H, W] and masks [B, H, W], got {tuple(images.shape)} "
                f"and {tuple(masks.shape)}"
            )
        generator = self.generator if generator is None else generator
        classes = classify_blocks(masks, self.block)  # [B, h, w]
        B, h, w = classes.shape
        share = batch_share()
        if share is None:
            idx_pos, idx_neg = self._draw(classes.cpu(), generator)
        else:  # several processes: draw for the global batch, as one process would, and keep this rank's share
            idx_pos, idx_neg = self._draw(share.gather(classes).cpu(), generator)
            idx_pos, idx_neg = share.own(idx_pos, B * h * w), share.own(idx_neg, B * h * w)
        idx_pos, idx_neg = idx_pos.to(images.device), idx_neg.to(images.device)
        keep = torch.ones(B * h * w, device=images.device, dtype=images.dtype)
        keep[torch.cat([idx_pos, idx_neg])] = 0
        keep = keep.view(B, 1, h, w).repeat_interleave(self.block, 2).repeat_interleave(self.block, 3)
        return MaskedBatch(images * keep, idx_pos, idx_neg, classes)

    def _draw(self, classes: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Flat indices into ``B*h*w`` of the class-1 and class-0 blocks to mask, drawn
        image by image from block ``classes [B, h, w]`` (on the CPU)."""
        B, h, w = classes.shape
        flat = classes.reshape(B, h * w)
        is_pos = torch.isin(flat, torch.tensor(STRATEGIES[self.strategy]))
        pos, neg = [], []
        for b in range(B):
            p, n = self._sample(is_pos[b], flat[b] == BACKGROUND, generator)
            pos.append(p + b * h * w)
            neg.append(n + b * h * w)
        return torch.cat(pos), torch.cat(neg)

    def _sample(self, is_pos: Tensor, is_neg: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Equal-sized random draws (flat indices within one image) from two block sets."""
        cand_pos, cand_neg = is_pos.nonzero()[:, 0], is_neg.nonzero()[:, 0]
        n = 0 if len(cand_pos) == 0 else min(max(1, round(self.ratio * len(cand_pos))), len(cand_neg))
        pick_pos = torch.randperm(len(cand_pos), generator=generator)[:n]
        pick_neg = torch.randperm(len(cand_neg), generator=generator)[:n]
        return cand_pos[pick_pos].sort().values, cand_neg[pick_neg].sort().values
