"""Op-table rows for normalization (graphc/ops/norm.py, graphc/ops/state.py) and attention
(graphc/ops/attention.py), with expectations from plain loops over rows and NumPy's own
statistics (np.var), independent of graphc's compositions."""

from __future__ import annotations

import math

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In


def _standardize_rows(rows: np.ndarray, eps: float) -> np.ndarray:
    """Each row of a 2-D array to zero mean and unit biased variance, one row at a time."""
    out = np.empty(rows.shape, np.float64)
    for r, row in enumerate(rows.astype(np.float64)):
        out[r] = (row - row.mean()) / math.sqrt(row.var() + eps)
    return out


def _layer_norm_2d(x, w, b, eps=1e-5):
    """Over the last two axes."""
    rows = _standardize_rows(x.reshape(x.shape[0], -1), eps).reshape(x.shape)
    return (rows * w + b).astype(x.dtype)


def _rms_norm_last(x, w, eps=1e-3):
    out = np.empty(x.shape, np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx].astype(np.float64)
        out[idx] = row / math.sqrt(sum(v * v for v in row) / len(row) + eps) * w
    return out.astype(x.dtype)


def _channel_affine(out, w, b):
    shape = (1, -1) + (1,) * (out.ndim - 2)
    return out * w.reshape(shape) + b.reshape(shape)


def _batch_norm_train(x, w, b, eps=1e-5):
    out = np.empty(x.shape, np.float64)
    for c in range(x.shape[1]):
        channel = x[:, c].astype(np.float64)
        out[:, c] = (channel - channel.mean()) / math.sqrt(channel.var() + eps)
    return _channel_affine(out, w, b).astype(x.dtype)


def _batch_norm_eval(x, mean, var, w, b, eps=1e-5):
    out = np.empty(x.shape, np.float64)
    for c in range(x.shape[1]):
        out[:, c] = (x[:, c] - mean[c]) / math.sqrt(var[c] + eps)
    return _channel_affine(out, w, b).astype(x.dtype)


def _group_norm(x, w, b, groups=2, eps=1e-5):
    n, c = x.shape[:2]
    rows = _standardize_rows(x.reshape(n * groups, -1), eps).reshape(x.shape)
    return _channel_affine(rows, w, b).astype(x.dtype)


def _instance_norm(x, w, b, eps=1e-5):
    n, c = x.shape[:2]
    rows = _standardize_rows(x.reshape(n * c, -1), eps).reshape(x.shape)
    return _channel_affine(rows, w, b).astype(x.dtype)


def _batch_norm_with_running_stats(x, w, b):
    """batch_norm in training mode with running statistics (params): the value is the
    batch-normalized x; the attached updates ride along (attach_update is in the graph)."""
    channels = x.shape[1]
    dtype = x.dtype
    running_mean = gc.param("case_bn.running_mean", np.zeros(channels, dtype))
    running_var = gc.param("case_bn.running_var", np.ones(channels, dtype))
    return gc.batch_norm(x, running_mean, running_var, w, b, training=True)


NORM_CASES: list[Case] = [
    Case("layer_norm_trailing_axes", lambda x, w, b: gc.layer_norm(x, (3, 4), w, b),
         (In((2, 3, 4)), In((3, 4)), In((3, 4))), _layer_norm_2d),
    Case("rms_norm", lambda x, w: gc.rms_norm(x, w, eps=1e-3),
         (In((3, 5)), In((5,))), _rms_norm_last),
    Case("batch_norm_train", _batch_norm_with_running_stats,
         (In((4, 3, 2, 2)), In((3,)), In((3,))), _batch_norm_train),
    Case("batch_norm_eval", lambda x, m, v, w, b: gc.batch_norm(x, m, v, w, b),
         (In((4, 3, 2)), In((3,)), In((3,), kind="positive"), In((3,)), In((3,))),
         _batch_norm_eval),
    Case("group_norm", lambda x, w, b: gc.group_norm(x, 2, w, b),
         (In((2, 4, 3)), In((4,)), In((4,))), _group_norm),
    Case("instance_norm", lambda x, w, b: gc.instance_norm(x, weight=w, bias=b),
         (In((2, 3, 4)), In((3,)), In((3,))), _instance_norm),
]
