"""Seeded image augmentation over batches whose last two axes are (height, width).

Each augmentation is a callable `aug(images, rng) -> images` that draws one random
choice per image from `rng` (a numpy Generator or an int seed), so the same seed gives
the same batch; `Compose` chains them. Pass one as `Batches(..., transform=aug)`."""

from __future__ import annotations

import math

import numpy as np


def _generator(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"augmentation: rng must be a numpy Generator or an int seed, got {rng!r}")


def _images(owner: str, images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim < 3 or not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{owner}: expected float images of shape (N, ..., H, W), got "
                         f"{images.dtype}{list(images.shape)}")
    return images


class Augmentation:
    def __call__(self, images: np.ndarray, rng) -> np.ndarray:
        images = _images(type(self).__name__, images)
        return self.apply(images, _generator(rng))

    def apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


class RandomShift(Augmentation):
    """Translate each image by whole pixels, up to max_shift each way on each axis; pixels
    shifted in are `fill`."""

    def __init__(self, max_shift: int = 1, fill: float = 0.0):
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be an int >= 0, got {max_shift!r}")
        self.max_shift, self.fill = max_shift, fill

    def apply(self, images, rng):
        dy, dx = rng.integers(-self.max_shift, self.max_shift + 1, size=(2, len(images)))
        return shift(images, dy, dx, self.fill)


class RandomFlip(Augmentation):
    """Mirror each image with probability p: axis=-1 left-right, axis=-2 up-down."""

    def __init__(self, p: float = 0.5, axis: int = -1):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomFlip: p must be in [0, 1], got {p!r}")
        if axis not in (-1, -2):
            raise ValueError(f"RandomFlip: axis must be -1 (width) or -2 (height), got {axis!r}")
        self.p, self.axis = p, axis

    def apply(self, images, rng):
        flip = rng.random(len(images)) < self.p
        out = images.copy()
        out[flip] = np.flip(images[flip], axis=self.axis)
        return out


class RandomRotation(Augmentation):
    """Rotate each image about its center by an angle uniform in +-max_degrees, with
    bilinear interpolation; pixels from outside the image are 0."""

    def __init__(self, max_degrees: float = 10.0):
        if not 0 <= max_degrees <= 180:
            raise ValueError(f"RandomRotation: max_degrees must be in [0, 180], got "
                             f"{max_degrees!r}")
        self.max_degrees = max_degrees

    def apply(self, images, rng):
        return rotate(images, rng.uniform(-self.max_degrees, self.max_degrees, len(images)))


class GaussianNoise(Augmentation):
    """Add independent normal noise of standard deviation `std` to every pixel."""

    def __init__(self, std: float = 0.05):
        if not (std >= 0 and math.isfinite(std)):
            raise ValueError(f"GaussianNoise: std must be a finite number >= 0, got {std!r}")
        self.std = std

    def apply(self, images, rng):
        return (images + rng.normal(0.0, self.std, images.shape)).astype(images.dtype)


class Compose(Augmentation):
    """Augmentations applied in order, all drawing from the same generator."""

    def __init__(self, *augmentations: Augmentation):
        for k, aug in enumerate(augmentations):
            if not isinstance(aug, Augmentation):
                raise TypeError(f"Compose: item {k} is a {type(aug).__name__}, not an "
                                "augmentation")
        self.augmentations = augmentations

    def apply(self, images, rng):
        for aug in self.augmentations:
            images = aug.apply(images, rng)
        return images


def shift(images: np.ndarray, dy, dx, fill: float = 0.0) -> np.ndarray:
    """Image k moved down by dy[k] and right by dx[k] whole pixels (negative: up, left)."""
    images = _images("shift", images)
    n, h, w = len(images), images.shape[-2], images.shape[-1]
    dy, dx = np.broadcast_to(dy, n).astype(np.int64), np.broadcast_to(dx, n).astype(np.int64)
    m = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    flat = images.reshape(n, -1, h, w)
    padded = np.pad(flat, ((0, 0), (0, 0), (m, m), (m, m)), constant_values=fill)
    rows = np.arange(h)[None, :] + m - dy[:, None]               # (n, h)
    cols = np.arange(w)[None, :] + m - dx[:, None]               # (n, w)
    channels = np.arange(flat.shape[1])[None, :, None, None]
    out = padded[np.arange(n)[:, None, None, None], channels, rows[:, None, :, None],
                 cols[:, None, None, :]]
    return out.reshape(images.shape)


def rotate(images: np.ndarray, degrees) -> np.ndarray:
    """Image k rotated counterclockwise by degrees[k] about its center, bilinear, with 0
    for pixels that come from outside the image."""
    images = _images("rotate", images)
    n, h, w = len(images), images.shape[-2], images.shape[-1]
    angle = np.deg2rad(np.broadcast_to(degrees, n).astype(np.float64))
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    # Each output pixel samples the input at its position turned back clockwise (rows grow
    # downward, so that is (y, x) -> (cos y + sin x, cos x - sin y)).
    src_y = cos * y + sin * x + cy + 1      # +1: the offset into the zero-padded image
    src_x = cos * x - sin * y + cx + 1
    padded = np.pad(images.reshape(n, -1, h, w), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y0 = np.clip(np.floor(src_y).astype(np.int64), 0, h)
    x0 = np.clip(np.floor(src_x).astype(np.int64), 0, w)
    fy = np.clip(src_y - y0, 0.0, 1.0)[:, None]
    fx = np.clip(src_x - x0, 0.0, 1.0)[:, None]
    batch = np.arange(n)[:, None, None]

    def at(yy, xx):  # (n, c, h, w) samples of the padded images
        return np.moveaxis(padded[batch, :, yy, xx], -1, 1)

    out = ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
           + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)))
    return out.reshape(images.shape).astype(images.dtype)
