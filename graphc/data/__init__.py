"""Data tools: seeded batching, preprocessing fitted on training data, seeded image
augmentation, and datasets (scikit-learn's digits, MNIST-format IDX files on disk)."""

from graphc.data.augment import (
    Augmentation,
    Compose,
    GaussianNoise,
    RandomFlip,
    RandomRotation,
    RandomShift,
    rotate,
    shift,
)
from graphc.data.batching import Batches, shard_bounds, train_test_split
from graphc.data.datasets import load_digits, load_mnist, read_idx
from graphc.data.preprocess import (
    PCA,
    MeanSubtraction,
    MinMaxScale,
    Pipeline,
    Preprocessor,
    Standardize,
    ZCAWhitening,
)

__all__ = [
    "PCA", "Augmentation", "Batches", "Compose", "GaussianNoise", "MeanSubtraction",
    "MinMaxScale", "Pipeline", "Preprocessor", "RandomFlip", "RandomRotation", "RandomShift",
    "Standardize", "ZCAWhitening", "load_digits", "load_mnist", "read_idx", "rotate", "shift",
    "shard_bounds", "train_test_split",
]
