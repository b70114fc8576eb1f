"""Synthetic relic-landslide scenes: a stand-in for the paper's private data set.

A scene is a hillside seen from above: fractal terrain lit by a hillshade, forest,
grass and bare-soil cover, and (with probability `slide_fraction`) one or two old
landslides. A landslide is horseshoe-shaped: a curved main scarp at its head and two
side walls where the ground dropped, a hummocky body, and a bulging toe where the
mass piled up. Like a relic landslide it is overgrown: its tone and texture differ only
slightly from the surroundings, and farmland terraces, roads and houses are laid over
bodies and background alike.

`difficulty` in [0, 1] blurs the landslide: at 0 its tone differs clearly and its
scarps are sharp, at 1 the tone and texture match the surroundings and the scarps are
smoothed into the hillside. The random draws do not depend on difficulty, so one seed
gives the same layout at every difficulty.
"""

from __future__ import annotations

import math

import numpy as np

from mrife.data.folder import Scene

# reflectances (RGB in [0, 1]) of the land covers
FOREST = np.array([0.16, 0.24, 0.13], np.float32)
GRASS = np.array([0.40, 0.45, 0.26], np.float32)
SOIL = np.array([0.56, 0.48, 0.37], np.float32)
SLIDE_GRASS = np.array([0.47, 0.48, 0.30], np.float32)  # regrown grass and shrubs on old slide mass
SLIDE_SOIL = np.array([0.60, 0.52, 0.40], np.float32)
FIELDS = np.array(
    [[0.44, 0.49, 0.27], [0.55, 0.53, 0.36], [0.37, 0.45, 0.23], [0.60, 0.54, 0.43], [0.49, 0.47, 0.33]],
    np.float32,
)
ROAD = np.array([0.66, 0.64, 0.58], np.float32)
ROOFS = np.array([[0.86, 0.86, 0.84], [0.60, 0.66, 0.74], [0.74, 0.44, 0.36], [0.78, 0.78, 0.76]], np.float32)

MIN_FRACTION, MAX_FRACTION = 0.05, 0.40  # landslide share of a scene holding one


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Smooth (smoothstep-weighted bilinear) upsampling of grid [g, g] to [size, size]."""
    g = grid.shape[0]
    coords = np.linspace(0.0, g - 1.0, size, dtype=np.float32)
    i0 = np.minimum(coords.astype(int), g - 2)
    t = coords - i0
    t = t * t * (3.0 - 2.0 * t)  # removes the creases of plain bilinear value noise
    rows = grid[i0] * (1 - t)[:, None] + grid[i0 + 1] * t[:, None]  # [size, g]
    return rows[:, i0] * (1 - t)[None, :] + rows[:, i0 + 1] * t[None, :]


def fractal_noise(rng: np.random.Generator, size: int, cells: int, octaves: int, gain: float = 0.5) -> np.ndarray:
    """Fractal value noise [size, size], about zero-mean, unit std.

    Octave o is a random grid of cells * 2^o cells, upsampled; its amplitude is gain^o.
    `cells` sets the coarsest feature: about size / cells pixels.
    """
    total = np.zeros((size, size), np.float32)  # float32: half the memory traffic of float64
    for octave in range(octaves):
        n = min(cells * 2**octave, size) + 1
        total += gain**octave * _upsample(rng.standard_normal((n, n), dtype=np.float32), size)
    total -= total.mean()
    return total / (total.std() + 1e-8)


def hillshade(height: np.ndarray, azimuth: float = 315.0, altitude: float = 45.0) -> np.ndarray:
    """Lambertian shading in [0, 1] of a height field [H, W] (heights in pixels),
    lit from `azimuth` degrees (clockwise from north = up) and `altitude` degrees."""
    dz_dy, dz_dx = np.gradient(height)
    az, alt = np.radians(azimuth), np.radians(altitude)
    # light direction in (x right, y down, z up); north is -y
    lx, ly, lz = (float(c) for c in (np.sin(az) * np.cos(alt), -np.cos(az) * np.cos(alt), np.sin(alt)))
    shade = (-dz_dx * lx - dz_dy * ly + lz) / np.sqrt(1 + dz_dx**2 + dz_dy**2)
    return np.clip(shade, 0.0, 1.0)


def _landslide_frame(rng, size, fraction, downslope):
    """Draw a landslide's placement and shape: a dict of centre, axis, length, width."""
    aspect = float(rng.uniform(1.0, 1.9))  # length / width
    area = float(fraction) * size * size
    width = math.sqrt(area / (0.78 * aspect))  # 0.78: a horseshoe fills ~78% of its box
    return {
        "cy": float(rng.uniform(0.3, 0.7)) * size,
        "cx": float(rng.uniform(0.3, 0.7)) * size,
        "angle": float(downslope + rng.normal(0.0, 0.25)),
        "length": aspect * width,
        "width": width,
        "warp": rng.integers(2**31),  # seed of the outline's irregularity
    }


def _landslide_distance(frame, size):
    """Approximate signed distance in pixels to the landslide's outline (> 0 inside) and
    the position along its axis a [size, size] (0 at the head scarp, 1 at the toe)."""
    warp_rng = np.random.default_rng(frame["warp"])
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = y - frame["cy"], x - frame["cx"]
    cos, sin = math.cos(frame["angle"]), math.sin(frame["angle"])
    length, width = frame["length"], frame["width"]
    # irregular outline: warp the local frame with smooth noise
    u = dx * cos + dy * sin + 0.07 * length * fractal_noise(warp_rng, size, 3, 2)
    v = -dx * sin + dy * cos + 0.08 * width * fractal_noise(warp_rng, size, 3, 2)
    a = u / length + 0.5
    ac = np.clip(a, 0.0, 1.0)
    head = np.sqrt(np.clip(1.0 - ((0.22 - np.minimum(ac, 0.22)) / 0.22) ** 2, 0.0, 1.0))  # arc
    toe = np.sqrt(np.clip(1.0 - ((np.maximum(ac, 0.85) - 0.85) / 0.15) ** 2, 0.0, 1.0))
    bulge = 1.0 + 0.18 * np.exp(-(((ac - 0.78) / 0.12) ** 2))  # the toe spreads out
    half_width = 0.5 * width * head * toe * bulge
    distance = np.minimum(half_width - np.abs(v), np.minimum(u + 0.5 * length, 0.5 * length - u))
    return distance, a


def _draw_landslides(rng, size, downslope):
    """Frames and (distance, a) fields of one or two landslides whose union covers
    5-40% of the scene (redrawn until it does)."""
    for _ in range(20):
        frames = [_landslide_frame(rng, size, rng.uniform(0.05, 0.24), downslope)]
        if rng.random() < 0.3:  # a smaller second landslide
            frames.append(_landslide_frame(rng, size, rng.uniform(0.03, 0.07), downslope))
        fields = [_landslide_distance(frame, size) for frame in frames]
        mask = np.logical_or.reduce([distance > 0 for distance, _ in fields])
        if MIN_FRACTION + 0.01 <= mask.mean() <= MAX_FRACTION - 0.02:
            return frames, fields
    raise RuntimeError("could not place a landslide of 5-40% of the scene; report this seed")


def _stamp(canvas, weight, ys, xs, radius, colour, alpha=1.0):
    """Paint discs of `radius` px centred on (ys, xs) into canvas [H, W, 3] and weight [H, W]."""
    size = canvas.shape[0]
    r = int(np.ceil(radius))
    oy, ox = np.mgrid[-r : r + 1, -r : r + 1]
    keep = oy**2 + ox**2 <= radius**2
    py = (np.rint(ys)[:, None] + oy[keep][None]).astype(int).ravel()
    px = (np.rint(xs)[:, None] + ox[keep][None]).astype(int).ravel()
    inside = (py >= 0) & (py < size) & (px >= 0) & (px < size)
    canvas[py[inside], px[inside]] = colour
    weight[py[inside], px[inside]] = alpha


def _farmland(rng, size, canvas, weight, cy, cx, extent, contour_angle):
    """Terraced strip fields: parallel strips along the contour in a rotated, ragged patch
    of half-length `extent` px centred on (cy, cx). Only the patch's bounding box is
    computed."""
    half = int(np.ceil(1.6 * extent))  # holds the ragged patch: corners reach ~1.53 extent
    box = 2 * half
    y0, x0 = int(cy) - half, int(cx) - half
    y, x = np.mgrid[y0 : y0 + box, x0 : x0 + box].astype(float)
    cos, sin = math.cos(contour_angle), math.sin(contour_angle)
    along = (x - cx) * cos + (y - cy) * sin
    across = -(x - cx) * sin + (y - cy) * cos
    ragged = 0.15 * extent * np.clip(fractal_noise(rng, box, 4, 2), -1.5, 1.5)
    patch = (np.abs(along) + ragged < extent) & (np.abs(across) + ragged < 0.7 * extent)
    strip_width = rng.uniform(4.0, 8.0) * size / 256
    curved = across / strip_width + 0.5 * np.sin(along / extent * rng.uniform(1.0, 3.0))
    strip = np.floor(curved).astype(int)
    colours = FIELDS[rng.integers(len(FIELDS), size=64)]
    field = colours[strip % 64] * (1.0 + 0.05 * fractal_noise(rng, box, 32, 2))[..., None]
    ridge = np.abs(curved - np.round(curved)) * strip_width < 0.6
    field[ridge] *= 0.75  # the dark earth bank between terraces
    # clip the box to the scene
    inside = (y >= 0) & (y < size) & (x >= 0) & (x < size) & patch
    canvas[y[inside].astype(int), x[inside].astype(int)] = field[inside]
    weight[y[inside].astype(int), x[inside].astype(int)] = 0.85


def _road(rng, size, canvas, weight):
    """A winding road across the scene."""
    t = np.linspace(0.0, 1.0, 6 * size)
    angle = rng.uniform(0, np.pi)
    start = rng.uniform(0.2, 0.8, size=2) * size
    direction = np.array([np.sin(angle), np.cos(angle)])
    normal = np.array([-direction[1], direction[0]])
    sway = rng.uniform(0.03, 0.1) * size * np.sin(2 * np.pi * rng.uniform(0.8, 2.0) * t + rng.uniform(0, 6.3))
    offset = (t - 0.5) * 1.6 * size
    ys = start[0] + offset * direction[0] + sway * normal[0]
    xs = start[1] + offset * direction[1] + sway * normal[1]
    _stamp(canvas, weight, ys, xs, rng.uniform(1.0, 1.8) * size / 256, ROAD)
    return ys, xs


def _houses(rng, size, canvas, weight, shadow, ys, xs):
    """A hamlet of small bright roofs with shadows, near the points (ys, xs)."""
    pick = rng.integers(len(ys))
    cy, cx = ys[pick], xs[pick]
    for _ in range(rng.integers(3, 9)):
        hy = int(cy + rng.normal(0, 10) * size / 256)
        hx = int(cx + rng.normal(0, 10) * size / 256)
        h, w = (rng.integers(3, 7, size=2) * size / 256).astype(int) + 1
        if not (0 <= hy < size - h - 2 and 0 <= hx < size - w - 2):
            continue
        shift = max(1, size // 200)  # shadows fall to the south-east (light from the north-west)
        shadow[hy + shift : hy + h + shift, hx + shift : hx + w + shift] = 0.45
        canvas[hy : hy + h, hx : hx + w] = ROOFS[rng.integers(len(ROOFS))]
        weight[hy : hy + h, hx : hx + w] = 1.0


def _terrain(rng, size, downslope):
    """Height field [size, size] in pixels of a hillside dipping towards `downslope`
    (radians, clockwise from +x), and its fine-relief part (also in the height)."""
    scale = size / 256
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    hills = 22 * scale * fractal_noise(rng, size, 2, 3)
    gullies = -7 * scale * np.abs(fractal_noise(rng, size, 5, 3))  # |noise|: V-shaped valleys
    detail = 2.0 * scale * fractal_noise(rng, size, 24, 2)
    ramp = -0.3 * (x * math.cos(downslope) + y * math.sin(downslope))
    return hills + gullies + detail + ramp, detail


def make_scene(
    rng: np.random.Generator | int,
    size: int = 256,
    difficulty: float = 0.5,
    with_slide: bool = True,
    name: str = "synthetic",
) -> Scene:
    """One synthetic scene: image float32 [size, size, 3] in [0, 1], mask uint8 {0, 1}.

    rng: a numpy Generator or a seed. The mask is the landslides' outline (empty when
    with_slide is False); a landslide scene has 5-40% landslide pixels.
    """
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty {difficulty} must be in [0, 1] (0 clear, 1 nearly invisible)")
    rng = np.random.default_rng(rng)
    scale = size / 256  # lengths are tuned at 256 px and scale with the scene

    downslope = float(rng.uniform(0, 2 * np.pi))
    height, detail = _terrain(rng, size, downslope)
    cover = fractal_noise(rng, size, 5, 5, gain=0.6)  # < 0 forest, > 0 grass, >> 0 soil
    canopy = fractal_noise(rng, size, 64, 2, gain=0.7)  # tree crowns
    forest_share = _smoothstep(0.3, -0.3, cover)[..., None]
    soil_share = _smoothstep(0.9, 1.6, cover)[..., None]
    albedo = forest_share * FOREST * (1 + 0.25 * canopy[..., None]) + (1 - forest_share) * GRASS
    albedo = albedo * (1 - soil_share) + soil_share * SOIL

    mask = np.zeros((size, size), np.uint8)
    if with_slide:
        frames, fields = _draw_landslides(rng, size, downslope)
        slide_texture = fractal_noise(rng, size, 12, 3, gain=0.6)
        hummocks = fractal_noise(rng, size, 14, 2)
        slide_cover = fractal_noise(rng, size, 8, 3)
        shrubs = fractal_noise(rng, size, 90, 2)  # speckle of shrubs on the regrown mass
        # difficulty blurs the outline and fades depth, tone and texture (never the draws)
        edge = (3.0 + 15.0 * difficulty) * scale
        contrast = 0.85 * (1 - difficulty) + 0.05
        texture = 1 - 0.9 * difficulty
        for frame, (distance, a) in zip(frames, fields):
            mask |= (distance > 0).astype(np.uint8)
            inside = _smoothstep(-edge / 2, edge / 2, distance)
            depth = 0.08 * frame["width"] * (1 - 0.85 * difficulty)
            # depleted head (the main scarp and side walls step down into it), piled-up toe
            relief = -depth * (1 - _smoothstep(0.35, 0.75, a)) + 0.5 * depth * _smoothstep(0.55, 0.9, a)
            # the moved mass lost the old gullies' fine relief and gained hummocks
            relief += texture * (2.2 * scale * (0.5 + a.clip(0, 1)) * hummocks - detail)
            height += inside * relief
            soil = _smoothstep(0.3, 1.3, slide_cover)[..., None]
            grain = 1 + 0.12 * slide_texture + 0.1 * shrubs  # the slide's own texture
            tone = (SLIDE_GRASS * (1 - soil) + SLIDE_SOIL * soil) * grain[..., None]
            albedo += (contrast * inside)[..., None] * (tone - albedo)

    # land use laid over landslides and background alike
    overlay = np.zeros((size, size, 3), np.float32)
    weight = np.zeros((size, size), np.float32)
    shadow = np.ones((size, size), np.float32)
    contour = downslope + np.pi / 2  # terraces follow the contour lines
    for _ in range(rng.integers(0, 3)):
        _farmland(rng, size, overlay, weight, *rng.uniform(0.1, 0.9, size=2) * size,
                  rng.uniform(0.08, 0.18) * size, contour + rng.normal(0, 0.2))
    if with_slide and rng.random() < 0.6:  # gentle slide masses are often farmed
        frame = frames[0]
        _farmland(rng, size, overlay, weight, frame["cy"], frame["cx"],
                  0.4 * frame["width"], contour + rng.normal(0, 0.15))
    if rng.random() < 0.7:
        road_y, road_x = _road(rng, size, overlay, weight)
        if rng.random() < 0.7:
            _houses(rng, size, overlay, weight, shadow, road_y, road_x)

    albedo = albedo * (1 - weight[..., None]) + overlay * weight[..., None]
    light = 0.35 + 0.9 * hillshade(height)
    image = albedo * light[..., None] * shadow[..., None]
    image += 0.012 * rng.standard_normal((size, size, 3), dtype=np.float32)  # sensor noise
    return Scene(name, np.clip(image, 0, 1).astype(np.float32), mask)


def make_scenes(
    n: int, size: int = 256, difficulty: float = 0.5, slide_fraction: float = 0.75, seed: int = 0
) -> list[Scene]:
    """n synthetic scenes named synthetic000, synthetic001, ...; deterministic by seed.

    round(n * (1 - slide_fraction)) of them, picked at random, hold no landslide (empty
    mask). Scene i depends only on (seed, i, its landslide flag), not on n.
    """
    if not 0.0 <= slide_fraction <= 1.0:
        raise ValueError(f"slide_fraction {slide_fraction} must be in [0, 1]")
    children = np.random.SeedSequence(seed).spawn(n + 1)
    n_free = int(round(n * (1 - slide_fraction)))
    free = set(np.random.default_rng(children[n]).permutation(n)[:n_free].tolist())
    return [
        make_scene(np.random.default_rng(children[i]), size, difficulty, i not in free, f"synthetic{i:03d}")
        for i in range(n)
    ]
