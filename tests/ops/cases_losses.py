"""Op-table rows for the losses (graphc/ops/losses.py), with expectations written out in
Python's math module sample by sample from PyTorch's documented formulas (independent of
graphc's composition and of torch; tests/ops/test_losses.py compares with torch itself)."""

from __future__ import annotations

import math

import numpy as np

import graphc as gc
from tests.ops.harness import Case, In

WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])
IGNORE = -1


def _log_softmax_row(row) -> list[float]:
    top = max(row)
    total = math.log(math.fsum(math.exp(v - top) for v in row)) + top
    return [v - total for v in row]


def _class_rows(x):
    """(N, C, d) -> every (n, j) position's class row, classes last."""
    return {(n, j): list(x[n, :, j]) for n in range(x.shape[0]) for j in range(x.shape[2])}


def _nll_expected(x, t):
    """nll_loss(x, t, weight=WEIGHT, ignore_index=-1), mean: sum(-w[y] x[y]) / sum(w[y])."""
    rows = _class_rows(x)
    num = den = 0.0
    for (n, j), row in rows.items():
        y = int(t[n, j])
        if y != IGNORE:
            num -= WEIGHT[y] * row[y]
            den += WEIGHT[y]
    return np.asarray(num / den)


def _cross_entropy_expected(x, t, smoothing=0.2):
    """cross_entropy with WEIGHT, ignore_index=-1 and label smoothing, mean:
    [(1-e) sum(-w[y] logp[y]) + e/C sum_c(-w[c] logp[c])] / sum(w[y]) over kept samples."""
    rows = _class_rows(x)
    classes = x.shape[1]
    nll = smooth = den = 0.0
    for (n, j), row in rows.items():
        y = int(t[n, j])
        if y == IGNORE:
            continue
        logp = _log_softmax_row(row)
        nll -= WEIGHT[y] * logp[y]
        smooth -= math.fsum(WEIGHT[c] * logp[c] for c in range(classes))
        den += WEIGHT[y]
    return np.asarray(((1 - smoothing) * nll + smoothing / classes * smooth) / den)


def _probability_expected(x, p, smoothing=0.1):
    """cross_entropy against probabilities, label smoothing, reduction="none": per sample
    -sum_c (p_c (1-e) + e/C) logp_c."""
    classes = x.shape[1]
    out = np.zeros(x.shape[0])
    for n in range(x.shape[0]):
        logp = _log_softmax_row(list(x[n]))
        out[n] = -math.fsum((p[n, c] * (1 - smoothing) + smoothing / classes) * logp[c]
                            for c in range(classes))
    return out


def _elementwise(fn, reduction):
    def expected(*arrays):
        values = np.vectorize(fn, otypes=[np.float64])(*arrays)
        if reduction == "none":
            return values
        total = math.fsum(values.ravel())
        return np.asarray(total if reduction == "sum" else total / values.size)
    return expected


def _bce(x, t, w):
    return -w * (t * max(math.log(x), -100) + (1 - t) * max(math.log(1 - x), -100))


def _bce_logits(x, t, w, pw):
    sig = 1 / (1 + math.exp(-x))
    return -w * (pw * t * math.log(sig) + (1 - t) * math.log(1 - sig))


def _smooth_l1(a, b, beta=0.5):
    d = abs(a - b)
    return 0.5 * d * d / beta if d < beta else d - 0.5 * beta


def _huber(a, b, delta=0.7):
    d = abs(a - b)
    return 0.5 * d * d if d < delta else delta * (d - 0.5 * delta)


def _kl_batchmean(logq, p):
    return np.asarray(math.fsum((p * (np.log(p) - logq)).ravel()) / logq.shape[0])


POS_WEIGHT = np.array([3.0, 0.5, 1.0])
SAMPLE_WEIGHT = np.array([[1.0], [0.5], [2.0], [0.25]])

LOSS_CASES: list[Case] = [
    Case("nll_loss_weight_ignore_index",
         lambda x, t: gc.nll_loss(x, t, weight=WEIGHT, ignore_index=IGNORE),
         (In((5, 4, 2)), In((5, 2), "int64", "int:-1:4")), _nll_expected),
    Case("cross_entropy_weight_ignore_smoothing",
         lambda x, t: gc.cross_entropy(x, t, weight=WEIGHT, ignore_index=IGNORE,
                                       label_smoothing=0.2),
         (In((5, 4, 2)), In((5, 2), "int64", "int:-1:4")), _cross_entropy_expected),
    Case("cross_entropy_probabilities",
         lambda x, p: gc.cross_entropy(x, p, label_smoothing=0.1, reduction="none"),
         (In((3, 5)), In((3, 5), kind="unit")), _probability_expected),
    Case("binary_cross_entropy_weight_sum",
         lambda x, t: gc.binary_cross_entropy(x, t, weight=SAMPLE_WEIGHT, reduction="sum"),
         (In((4, 3), kind="unit"), In((4, 3), kind="unit")),
         lambda x, t: np.asarray(math.fsum(
             _bce(x[i, j], t[i, j], SAMPLE_WEIGHT[i, 0]) for i in range(4) for j in range(3)))),
    Case("bce_with_logits_pos_weight",
         lambda x, t: gc.binary_cross_entropy_with_logits(
             x, t, weight=SAMPLE_WEIGHT, reduction="none", pos_weight=POS_WEIGHT),
         (In((4, 3)), In((4, 3), kind="unit")),
         lambda x, t: np.array([[_bce_logits(x[i, j], t[i, j], SAMPLE_WEIGHT[i, 0],
                                             POS_WEIGHT[j]) for j in range(3)]
                                for i in range(4)])),
    Case("mse_loss_sum", lambda a, b: gc.mse_loss(a, b, reduction="sum"),
         (In((3, 4)), In((3, 4))), _elementwise(lambda a, b: (a - b) ** 2, "sum")),
    Case("l1_loss", gc.l1_loss, (In((3, 4)), In((3, 4))),
         _elementwise(lambda a, b: abs(a - b), "mean")),
    Case("smooth_l1_loss_beta", lambda a, b: gc.smooth_l1_loss(a, b, beta=0.5),
         (In((4, 5)), In((4, 5))), _elementwise(_smooth_l1, "mean")),
    Case("huber_loss_delta", lambda a, b: gc.huber_loss(a, b, reduction="none", delta=0.7),
         (In((4, 5)), In((4, 5))), _elementwise(_huber, "none")),
    Case("kl_div_batchmean", lambda q, p: gc.kl_div(q, p, reduction="batchmean"),
         (In((3, 4)), In((3, 4), kind="unit")), _kl_batchmean),
    Case("kl_div_log_target", lambda q, p: gc.kl_div(q, p, reduction="none", log_target=True),
         (In((3, 4)), In((3, 4))),
         _elementwise(lambda q, lp: math.exp(lp) * (lp - q), "none")),
]
