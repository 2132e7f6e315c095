"""Augmentation: exact geometry, and the same output for the same seed."""

import numpy as np
import pytest

from graphc import data

IMAGES = np.random.default_rng(0).random((6, 2, 7, 7)).astype(np.float32)


def test_shift_moves_pixels_and_fills_with_zero():
    out = data.shift(IMAGES, dy=[1] * 6, dx=[-2] * 6)
    np.testing.assert_array_equal(out[..., 1:, :5], IMAGES[..., :6, 2:])
    assert not out[..., 0, :].any() and not out[..., :, 5:].any()


def test_rotation_by_right_angles_is_exact_and_counterclockwise():
    np.testing.assert_allclose(data.rotate(IMAGES, 90), np.rot90(IMAGES, 1, axes=(-2, -1)),
                               atol=1e-6)
    np.testing.assert_allclose(data.rotate(IMAGES, -90), np.rot90(IMAGES, -1, axes=(-2, -1)),
                               atol=1e-6)
    np.testing.assert_array_equal(data.rotate(IMAGES, 0), IMAGES)


def test_small_rotation_keeps_the_center_pixel_and_mass_roughly():
    image = np.zeros((1, 7, 7), np.float32)
    image[0, 3, 3] = 1.0
    out = data.rotate(image, 10)
    assert out[0, 3, 3] == pytest.approx(1.0)


def test_flip():
    every = data.RandomFlip(p=1.0)(IMAGES, 0)
    np.testing.assert_array_equal(every, IMAGES[..., ::-1])
    np.testing.assert_array_equal(data.RandomFlip(p=0.0)(IMAGES, 0), IMAGES)
    np.testing.assert_array_equal(data.RandomFlip(p=1.0, axis=-2)(IMAGES, 0), IMAGES[..., ::-1, :])


def test_noise_has_the_requested_scale():
    out = data.GaussianNoise(0.1)(np.zeros((100, 10, 10), np.float32), 0)
    # 10^4 draws: the sample std is within 3% of 0.1.
    assert out.dtype == np.float32 and abs(out.std() / 0.1 - 1) < 0.03


@pytest.mark.parametrize("aug", [data.RandomShift(2), data.RandomRotation(15),
                                 data.RandomFlip(), data.GaussianNoise(0.1),
                                 data.Compose(data.RandomShift(1), data.RandomRotation(10),
                                              data.GaussianNoise(0.05))])
def test_same_seed_same_output_other_seed_other_output(aug):
    a = aug(IMAGES, 42)
    b = aug(IMAGES, np.random.default_rng(42))
    c = aug(IMAGES, 43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == IMAGES.shape and a.dtype == IMAGES.dtype


def test_bad_arguments():
    with pytest.raises(ValueError, match="float images"):
        data.RandomShift(1)(np.zeros((2, 3), np.float32), 0)
    with pytest.raises(TypeError, match="rng"):
        data.RandomShift(1)(IMAGES, "seed")
    with pytest.raises(ValueError, match="max_shift"):
        data.RandomShift(-1)
    with pytest.raises(TypeError, match="item 0"):
        data.Compose(lambda x, rng: x)
