"""Tests of the synthetic relic-landslide generator (mrife.data.synthetic)."""

import time

import numpy as np
import pytest
import torch

from mrife.data import Scene, synthetic


def test_scenes_follow_the_scene_contract():
    scenes = synthetic.make_scenes(4, size=96, seed=0)
    assert len(scenes) == 4 and all(isinstance(s, Scene) for s in scenes), "expected 4 Scenes"
    assert len({s.name for s in scenes}) == 4, "scene names should be unique (the split groups by name)"
    for s in scenes:
        assert s.image.shape == (96, 96, 3) and s.image.dtype == np.float32, f"{s.name}: image float32 [96, 96, 3]"
        assert 0 <= s.image.min() and s.image.max() <= 1, f"{s.name}: image values should lie in [0, 1]"
        assert s.mask.shape == (96, 96) and s.mask.dtype == np.uint8, f"{s.name}: mask uint8 [96, 96]"
        assert set(np.unique(s.mask)) <= {0, 1}, f"{s.name}: mask values should be {{0, 1}}"
        assert s.image.std() > 0.03, f"{s.name}: the image should have texture, not a flat tone"


def test_same_seed_same_scenes_other_seed_other_scenes():
    a = synthetic.make_scenes(3, size=64, seed=5)
    b = synthetic.make_scenes(3, size=64, seed=5)
    c = synthetic.make_scenes(3, size=64, seed=6)
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.mask, y.mask), "same seed should give identical arrays"
    assert not any(np.array_equal(x.image, z.image) for x, z in zip(a, c)), "another seed should give other scenes"
    one = synthetic.make_scene(11, size=64, difficulty=0.3)
    assert np.array_equal(one.image, synthetic.make_scene(np.random.default_rng(11), 64, 0.3).image), \
        "make_scene with a seed or a Generator of that seed should agree"


def test_scene_does_not_depend_on_how_many_are_made():
    few = synthetic.make_scenes(2, size=64, slide_fraction=1.0, seed=2)
    more = synthetic.make_scenes(4, size=64, slide_fraction=1.0, seed=2)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(few, more)), "scene i should depend on (seed, i) only"


def test_landslide_fraction_bounds_and_empty_free_scenes():
    for difficulty in (0.0, 1.0):
        scenes = synthetic.make_scenes(16, size=128, difficulty=difficulty, slide_fraction=0.75, seed=1)
        fractions = np.array([s.mask.mean() for s in scenes])
        assert (fractions == 0).sum() == 4, f"16 x (1 - 0.75) = 4 scenes should be landslide-free, got {(fractions == 0).sum()}"
        held = fractions[fractions > 0]
        assert ((held >= 0.05) & (held <= 0.40)).all(), f"landslide fractions should be in [5%, 40%], got {np.round(held, 3)}"
    free = synthetic.make_scene(3, size=64, with_slide=False)
    assert not free.mask.any(), "a landslide-free scene should have an empty mask"


def surroundings(mask: np.ndarray, width: int) -> np.ndarray:
    """The ring of pixels within `width` px outside the mask (bool [H, W])."""
    grown = torch.nn.functional.max_pool2d(torch.from_numpy(mask).float()[None, None], 2 * width + 1, 1, width)
    return (grown[0, 0].numpy() > 0) & (mask == 0)


def test_difficulty_reduces_the_tone_contrast_of_landslides():
    def contrast(difficulty):
        """Mean over scenes of |brightness inside - around| / std around (a ring of 8 px
        around the landslide: the local background an interpreter compares with)."""
        values = []
        for s in synthetic.make_scenes(12, size=96, difficulty=difficulty, slide_fraction=1.0, seed=7):
            brightness, inside, around = s.image.mean(-1), s.mask.astype(bool), surroundings(s.mask, 8)
            values.append(abs(brightness[inside].mean() - brightness[around].mean()) / brightness[around].std())
        return float(np.mean(values))

    clear, middle, blurred = contrast(0.0), contrast(0.5), contrast(1.0)
    assert clear > middle > blurred, f"contrast should fall with difficulty: {clear:.2f}, {middle:.2f}, {blurred:.2f}"
    assert blurred < 0.5 * clear, f"at difficulty 1 the contrast ({blurred:.2f}) should be under half of difficulty 0 ({clear:.2f})"


def test_difficulty_changes_appearance_not_layout():
    a = synthetic.make_scene(4, size=64, difficulty=0.0)
    b = synthetic.make_scene(4, size=64, difficulty=1.0)
    assert np.array_equal(a.mask, b.mask), "one seed should give the same landslide at every difficulty"
    assert not np.array_equal(a.image, b.image), "difficulty should change how the landslide looks"


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="difficulty"):
        synthetic.make_scene(0, size=64, difficulty=1.5)
    with pytest.raises(ValueError, match="slide_fraction"):
        synthetic.make_scenes(2, size=64, slide_fraction=-0.1)


def test_generation_is_fast():
    start = time.perf_counter()
    synthetic.make_scenes(20, size=256, seed=0)
    seconds = time.perf_counter() - start
    assert seconds < 4.0, f"20 scenes of 256x256 should take about a second, took {seconds:.1f} s"
