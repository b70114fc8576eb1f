"""The paper's preprocessing: zero-pad and scale to the input size, histogram
equalization, and flips / 90-degree rotations applied alike to image and mask
(Sec. IV-A: "zero-padding and scaling", "histogram equalization", "horizontal flip,
vertical flip and rotation").
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

from mrife.labels import IGNORE

# ImageNet statistics, which the (ImageNet-pretrained) ResNet backbone expects
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def pad_and_resize(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad to a square (bottom/right), then scale to size x size.

    image: float32 [H, W, C] in [0, 1]; mask: uint8 [H, W] in {0, 1, IGNORE}.
    Returns image float32 [size, size, C] (bilinear, antialiased when shrinking) and
    mask uint8 [size, size] (nearest, so it keeps its values; the padding is ``IGNORE``).
    Padding first keeps the aspect ratio: a landslide is not stretched.
    """
    h, w = mask.shape
    if image.shape[:2] != (h, w):
        raise ValueError(f"image {image.shape[:2]} and mask {(h, w)} differ in size")
    side = max(h, w)
    padded_image = np.zeros((side, side, image.shape[2]), np.float32)
    padded_image[:h, :w] = image
    padded_mask = np.full((side, side), IGNORE, np.uint8)
    padded_mask[:h, :w] = mask
    if side == size:
        return padded_image, padded_mask
    image_t = torch.from_numpy(padded_image).permute(2, 0, 1)  # [H, W, C] -> [C, H, W]
    image_t = TF.resize(image_t, [size, size], InterpolationMode.BILINEAR, antialias=True)
    # nearest-exact samples pixel centres, so the mask stays aligned with the bilinear image
    mask_t = TF.resize(torch.from_numpy(padded_mask)[None], [size, size], InterpolationMode.NEAREST_EXACT)
    return image_t.clamp(0, 1).permute(1, 2, 0).numpy(), mask_t[0].numpy()


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [..] in [0, 1] -> uint8 [..] in 0..255 (rounded)."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def equalize(image: np.ndarray, nodata: np.ndarray | None = None) -> np.ndarray:
    """Histogram-equalize each channel: float32 [H, W, C] in [0, 1] -> the same.

    Works on 256 grey levels (torchvision's equalize on uint8), so the output takes
    values k / 255. ``nodata`` (bool [H, W], True where the file has no data) leaves those
    pixels out of the histograms and sets them to 0: a transparent or nodata border would
    otherwise count as a mass of black and stretch the valid pixels far brighter. Without
    ``nodata``, or with none set, the result is torchvision's, bit for bit.
    """
    if nodata is not None and nodata.any():
        return _equalize_valid(image, ~nodata)
    channels = torch.from_numpy(to_uint8(image)).permute(2, 0, 1)  # [H, W, C] -> [C, H, W]
    equalized = TF.equalize(channels.contiguous())
    return equalized.permute(1, 2, 0).numpy().astype(np.float32) / 255.0


def _equalize_valid(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:func:`equalize` with each channel's histogram over the ``valid`` pixels only
    (bool [H, W]); invalid pixels come out 0. The lookup table is torchvision's (PIL's):
    ``lut[k] = (cum[k - 1] + step // 2) // step``, ``step`` = the valid pixels not at the
    channel's brightest level, over 255; a channel with ``step`` 0 is left as it is."""
    levels = to_uint8(image)  # [H, W, C]
    out = np.zeros(image.shape, np.float32)
    for c in range(levels.shape[2]):
        values = levels[..., c][valid]  # [n valid]
        if values.size == 0:
            continue
        histogram = np.bincount(values, minlength=256)
        cumulative = np.cumsum(histogram)
        step = (values.size - histogram[values.max()]) // 255
        if step == 0:
            lut = np.arange(256)
        else:
            lut = np.concatenate([[0], np.clip((cumulative[:-1] + step // 2) // step, 0, 255)])
        out[..., c] = np.where(valid, lut[levels[..., c]], 0).astype(np.float32) / 255.0
    return out


def joint_flip_rot(image, mask, hflip: bool, vflip: bool, k: int):
    """Flip and rotate image and mask alike: horizontal flip, then vertical flip, then
    k counter-clockwise quarter turns.

    image: [C, H, W], mask: [H, W], both torch tensors or both numpy arrays (the last
    two axes are rows and columns). Returns (image, mask) of the same types; with an
    odd k, H and W swap.
    """
    if isinstance(image, torch.Tensor):
        flip, rot = torch.flip, torch.rot90
        if hflip:
            image, mask = flip(image, [-1]), flip(mask, [-1])
        if vflip:
            image, mask = flip(image, [-2]), flip(mask, [-2])
        if k % 4:
            image, mask = rot(image, k, [-2, -1]), rot(mask, k, [-2, -1])
        return image, mask
    if hflip:
        image, mask = np.flip(image, -1), np.flip(mask, -1)
    if vflip:
        image, mask = np.flip(image, -2), np.flip(mask, -2)
    if k % 4:
        image, mask = np.rot90(image, k, (-2, -1)), np.rot90(mask, k, (-2, -1))
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def normalize(image: torch.Tensor, mean=MEAN, std=STD) -> torch.Tensor:
    """Per-band normalization of float [C, H, W] (or [B, C, H, W]) in [0, 1]: ImageNet's
    statistics by default (RGB), a run's own for other bands (:func:`mrife.data.dataset.band_statistics`)."""
    mean = torch.tensor(mean, dtype=image.dtype).view(-1, 1, 1)
    std = torch.tensor(std, dtype=image.dtype).view(-1, 1, 1)
    return (image - mean) / std
