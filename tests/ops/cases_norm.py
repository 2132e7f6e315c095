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


# ----- attention ------------------------------------------------------------------------------
def _attention_loops(q, k, v, mask=None, causal=False, scale=None, gqa=False, keep=None,
                     rate=0.0):
    """Plain loops: for each query row, the scores it may attend, their softmax by
    math.exp, the weighted sum of value rows; a row that may attend nothing gives zeros.
    GQA repeats each key/value head over its group; keep: dropout's kept weights."""
    dtype = np.result_type(q, k, v)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    if gqa:
        group = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, group, axis=-3), np.repeat(v, group, axis=-3)
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (np.broadcast_to(x, lead + x.shape[-2:]) for x in (q, k, v))
    rows, cols = q.shape[-2], k.shape[-2]
    if mask is not None:
        mask = np.broadcast_to(mask, lead + (rows, cols))
    out = np.zeros(lead + (rows, v.shape[-1]))
    for idx in np.ndindex(*lead, rows):
        i = idx[-1]
        allowed = []
        for c in range(cols):
            score = sum(float(a) * float(b) for a, b in zip(q[idx], k[idx[:-1] + (c,)])) * scale
            if mask is not None and mask.dtype == np.bool_:
                if not mask[idx + (c,)]:
                    continue
            elif mask is not None:
                score += float(mask[idx + (c,)])
            if causal and c > i:
                continue
            if score != -math.inf:
                allowed.append((c, score))
        if not allowed:
            continue
        top = max(s for _, s in allowed)
        total = sum(math.exp(s - top) for _, s in allowed)
        for c, s in allowed:
            weight = math.exp(s - top) / total
            if keep is not None:
                weight = weight / (1 - rate) if keep[idx + (c,)] else 0.0
            out[idx] += weight * v[idx[:-1] + (c,)].astype(np.float64)
    return out.astype(dtype)


_ROW_ONE_OFF = np.ones((3, 5), bool)
_ROW_ONE_OFF[1] = False  # query row 1 may attend nothing: its output and gradients are 0


def _sdpa_bool_mask(q, k, v, m):
    return gc.scaled_dot_product_attention(q, k, v, attn_mask=gc.logical_and(m, _ROW_ONE_OFF))


def _dropout_keep(shape, seed=5, rate=0.4):
    """The weights dropout keeps at the first call: cases.py's independent generator."""
    from tests.ops.cases import uniform_stream  # cases.py imports this module at its end

    return uniform_stream(seed, 0, int(np.prod(shape))).reshape(shape) >= rate


def _sdpa_dropout_expected(q, k, v):
    return _attention_loops(q, k, v, keep=_dropout_keep((1, 2, 3, 5)), rate=0.4)


def _sdpa_dropout_grad(q, k, v, w, eps=1e-6):
    """Central differences of sum(out * w) through the loops, with the mask of the first
    call (the one the analytic gradient is computed at)."""
    grads = []
    arrays = [q, k, v]
    for n, base in enumerate(arrays):
        g = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            values = []
            for sign in (1, -1):
                moved = [a.copy() for a in arrays]
                moved[n][idx] += sign * eps
                values.append(float(np.sum(_sdpa_dropout_expected(*moved) * w)))
            g[idx] = (values[0] - values[1]) / (2 * eps)
        grads.append(g)
    return grads


ATTENTION_CASES: list[Case] = [
    Case("scaled_dot_product_attention", gc.scaled_dot_product_attention,
         (In((2, 2, 3, 4)), In((2, 2, 5, 4)), In((2, 2, 5, 3))), _attention_loops),
    Case("sdpa_causal_gqa",
         lambda q, k, v: gc.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.7,
                                                         enable_gqa=True),
         (In((1, 4, 5, 3)), In((1, 2, 4, 3)), In((1, 2, 4, 2))),
         lambda q, k, v: _attention_loops(q, k, v, causal=True, scale=0.7, gqa=True)),
    Case("sdpa_bool_mask_broadcast", _sdpa_bool_mask,
         (In((2, 3, 4)), In((1, 5, 4)), In((2, 5, 3)), In((3, 5), "bool", "bool")),
         lambda q, k, v, m: _attention_loops(q, k, v, mask=m & _ROW_ONE_OFF)),
    Case("sdpa_float_mask",
         lambda q, k, v, m: gc.scaled_dot_product_attention(q, k, v, attn_mask=m),
         (In((2, 3, 4)), In((2, 5, 4)), In((2, 5, 3)), In((3, 5))),
         lambda q, k, v, m: _attention_loops(q, k, v, mask=m)),
    Case("sdpa_dropout",
         lambda q, k, v: gc.scaled_dot_product_attention(q, k, v, dropout_p=0.4, seed=5),
         (In((1, 2, 3, 4)), In((1, 2, 5, 4)), In((1, 2, 5, 3))), _sdpa_dropout_expected,
         grad_expected=_sdpa_dropout_grad),
]
