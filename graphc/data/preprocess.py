"""Preprocessing fitted on training data and applied unchanged to new data.

Each transform treats axis 0 as samples and the rest as features: `fit(train)` learns the
statistics, `transform(x)` applies them to any data of the same feature shape. Statistics
are computed in float64; float32 data comes back as float32."""

from __future__ import annotations

import numpy as np


class Preprocessor:
    """fit / transform / fit_transform / inverse_transform over (N, ...) arrays."""

    _fitted_attr = "mean_"

    def fit(self, x: np.ndarray) -> Preprocessor:
        x = self._samples(x, fitting=True)
        self.feature_shape_ = x.shape[1:]
        self._fit(x.reshape(len(x), -1).astype(np.float64))
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = self._samples(x)
        out = self._transform(x.reshape(len(x), -1).astype(np.float64))
        return self._restore(out, x)

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y)
        self._require_fitted()
        out = self._inverse(y.reshape(len(y), -1).astype(np.float64))
        dtype = y.dtype if y.dtype == np.float32 else np.float64
        return out.reshape((len(y),) + self.feature_shape_).astype(dtype)

    # ----- subclass hooks -------------------------------------------------------------------
    def _fit(self, x: np.ndarray) -> None: raise NotImplementedError
    def _transform(self, x: np.ndarray) -> np.ndarray: raise NotImplementedError
    def _inverse(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no inverse")

    def _restore(self, out: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The transformed features back in the input's shape and (float) dtype."""
        dtype = x.dtype if x.dtype == np.float32 else np.float64
        return out.reshape(x.shape).astype(dtype)

    # ----- checks ---------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise RuntimeError(f"{type(self).__name__}: call fit(training_data) first")

    def _samples(self, x, fitting: bool = False) -> np.ndarray:
        name = type(self).__name__
        x = np.asarray(x)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"{name}: expected an array of shape (samples, features...), got "
                             f"{x.shape}")
        if not (np.issubdtype(x.dtype, np.number) and np.isfinite(x).all()):
            raise ValueError(f"{name}: data must be finite numbers (got dtype {x.dtype})")
        if fitting:
            if len(x) < 2:
                raise ValueError(f"{name}: fitting needs at least 2 samples, got {len(x)}")
        else:
            self._require_fitted()
            if x.shape[1:] != self.feature_shape_:
                raise ValueError(f"{name}: fitted on features of shape {self.feature_shape_}, "
                                 f"got data of shape {x.shape}")
        return x


class MeanSubtraction(Preprocessor):
    """x - mean: per feature (e.g. the mean image), or one global mean with
    per_feature=False."""

    def __init__(self, per_feature: bool = True):
        self.per_feature = per_feature

    def _fit(self, x):
        self.mean_ = x.mean(0) if self.per_feature else np.full(x.shape[1], x.mean())

    def _transform(self, x): return x - self.mean_
    def _inverse(self, y): return y + self.mean_


class Standardize(Preprocessor):
    """(x - mean) / std, per feature or global; a constant feature becomes 0 (its std is
    taken as 1, so nothing is divided by zero)."""

    def __init__(self, per_feature: bool = True):
        self.per_feature = per_feature

    def _fit(self, x):
        if self.per_feature:
            self.mean_, std = x.mean(0), x.std(0)
        else:
            self.mean_, std = np.full(x.shape[1], x.mean()), np.full(x.shape[1], x.std())
        self.scale_ = np.where(std > 0, std, 1.0)

    def _transform(self, x): return (x - self.mean_) / self.scale_
    def _inverse(self, y): return y * self.scale_ + self.mean_


class MinMaxScale(Preprocessor):
    """Map each feature's training range [min, max] linearly onto feature_range (a constant
    feature maps to the range's low end)."""

    _fitted_attr = "min_"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0), per_feature: bool = True):
        lo, hi = feature_range
        if not lo < hi:
            raise ValueError(f"MinMaxScale: feature_range must be (low, high) with low < high, "
                             f"got {feature_range}")
        self.feature_range, self.per_feature = (float(lo), float(hi)), per_feature

    def _fit(self, x):
        lo, hi = (x.min(0), x.max(0)) if self.per_feature else (x.min(), x.max())
        self.min_ = np.broadcast_to(lo, x.shape[1]).copy()
        span = np.broadcast_to(hi, x.shape[1]) - self.min_
        self.span_ = np.where(span > 0, span, 1.0)

    def _transform(self, x):
        lo, hi = self.feature_range
        return (x - self.min_) / self.span_ * (hi - lo) + lo

    def _inverse(self, y):
        lo, hi = self.feature_range
        return (y - lo) / (hi - lo) * self.span_ + self.min_


class PCA(Preprocessor):
    """Project centered data on its `n_components` principal axes (all when None), found by
    SVD of the centered training data. whiten=True divides each component by its standard
    deviation, sqrt(variance + eps), so the training data's components have unit variance.
    transform gives (N, n_components)."""

    def __init__(self, n_components: int | None = None, whiten: bool = False, eps: float = 0.0):
        if n_components is not None and (not isinstance(n_components, int) or n_components < 1):
            raise ValueError(f"PCA: n_components must be a positive int or None, got "
                             f"{n_components!r}")
        if eps < 0:
            raise ValueError(f"PCA: eps must be >= 0, got {eps}")
        self.n_components, self.whiten, self.eps = n_components, whiten, eps

    def _fit(self, x):
        n, d = x.shape
        k = self.n_components or min(n, d)
        if k > min(n, d):
            raise ValueError(f"PCA: n_components={k} exceeds min(samples, features) = "
                             f"{min(n, d)}")
        self.mean_ = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        self.components_ = vt[:k]                       # (k, d): rows are principal axes
        self.explained_variance_ = s[:k] ** 2 / (n - 1)
        total = (s ** 2).sum()
        self.explained_variance_ratio_ = s[:k] ** 2 / total if total else np.zeros(k)
        if self.whiten and np.any(self.explained_variance_ + self.eps <= 0):
            raise ValueError("PCA: a kept component has zero variance; whitening it needs "
                             "eps > 0 or fewer components")

    def _scale(self) -> np.ndarray:
        return np.sqrt(self.explained_variance_ + self.eps) if self.whiten else 1.0

    def _transform(self, x):
        return (x - self.mean_) @ self.components_.T / self._scale()

    def _inverse(self, y):
        return (y * self._scale()) @ self.components_ + self.mean_

    def _restore(self, out, x):
        return out.astype(x.dtype if x.dtype == np.float32 else np.float64)


class ZCAWhitening(Preprocessor):
    """Whitening that stays closest to the input: rotate onto the principal axes, scale each
    to unit variance, rotate back (W = V diag(1/sqrt(var + eps)) V^T). eps > 0 damps
    near-zero-variance directions (e.g. pixels that are always blank)."""

    def __init__(self, eps: float = 1e-5):
        if eps < 0:
            raise ValueError(f"ZCAWhitening: eps must be >= 0, got {eps}")
        self.eps = eps

    def _fit(self, x):
        n, d = x.shape
        self.mean_ = x.mean(0)
        _, s, vt = np.linalg.svd(x - self.mean_, full_matrices=True)  # vt: a (d, d) basis
        variance = np.zeros(d)
        variance[:len(s)] = s ** 2 / (n - 1)  # directions past the data's rank: variance 0
        if self.eps == 0 and np.any(variance <= 0):
            raise ValueError("ZCAWhitening: the training data's covariance is singular; use "
                             "eps > 0")
        std = np.sqrt(variance + self.eps)[:, None]
        self.whitening_ = vt.T @ (vt / std)
        self.coloring_ = vt.T @ (vt * std)

    def _transform(self, x): return (x - self.mean_) @ self.whitening_
    def _inverse(self, y): return y @ self.coloring_ + self.mean_


class Pipeline(Preprocessor):
    """Preprocessors applied in order; fit fits each on the output of the ones before."""

    _fitted_attr = "feature_shape_"

    def __init__(self, *steps: Preprocessor):
        for k, step in enumerate(steps):
            if not isinstance(step, Preprocessor):
                raise TypeError(f"Pipeline: step {k} is a {type(step).__name__}, not a "
                                "graphc.data preprocessor")
        self.steps = steps

    def fit(self, x):
        x = self._samples(x, fitting=True)
        self.feature_shape_ = x.shape[1:]
        for step in self.steps:
            x = step.fit(x).transform(x)
        return self

    def transform(self, x):
        x = self._samples(x)
        for step in self.steps:
            x = step.transform(x)
        return x

    def inverse_transform(self, y):
        for step in reversed(self.steps):
            y = step.inverse_transform(y)
        return y
