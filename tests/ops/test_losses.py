"""The losses against torch.nn.functional (the oracle of PyTorch's semantics): values and
input gradients for every reduction and option, in float64, on the NumPy backend (the
op table runs them on LLVM); bad arguments refused naming the loss."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

torch = pytest.importorskip("torch", reason="torch (the test extra) is the oracle")
F = torch.nn.functional

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4, 3))                              # (N, C, d)
T = RNG.integers(0, 4, (6, 3))
T[0, 0] = T[3, 2] = -100                                    # PyTorch's default ignore_index
P = RNG.dirichlet(np.ones(4), (6, 3)).transpose(0, 2, 1)    # class probabilities on axis 1
W = RNG.uniform(0.5, 2.0, 4)


def graphc_value_and_grad(fn, x, *rest):
    """fn(x, *rest) and d sum(fn * g) / dx for a fixed random g, on the NumPy backend."""
    nodes = [gc.input(f"a{k}", a.shape, a.dtype) for k, a in enumerate((x, *rest))]
    out = fn(*nodes)
    g = np.random.default_rng(1).normal(size=tuple(out.shape))
    g_in = gc.input("g", out.shape, out.dtype)
    (dx,) = gc.grad(gc.sum(out * g_in), [nodes[0]])
    value, grad = gc.compile(nodes + [g_in], [out, dx], backend="numpy")(x, *rest, g)
    return value, grad, g


def torch_value_and_grad(fn, x, *rest, g):
    tx = torch.tensor(x, requires_grad=True)
    out = fn(tx, *(torch.tensor(a) for a in rest))
    (out * torch.tensor(g)).sum().backward()
    return out.detach().numpy(), tx.grad.numpy()


def agree(ours, theirs, x, *rest, rtol=1e-10):
    value, grad, g = graphc_value_and_grad(ours, x, *rest)
    expected_value, expected_grad = torch_value_and_grad(theirs, x, *rest, g=g)
    np.testing.assert_allclose(value, expected_value, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=rtol, atol=1e-12)


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weight"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_with_class_indices(reduction, weighted, smoothing):
    w = W if weighted else None
    tw = torch.tensor(W) if weighted else None
    agree(lambda x, t: gc.cross_entropy(x, t, weight=w, reduction=reduction,
                                        label_smoothing=smoothing),
          lambda x, t: F.cross_entropy(x, t, weight=tw, reduction=reduction,
                                       label_smoothing=smoothing), X, T)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weight"])
def test_cross_entropy_with_probabilities(reduction, weighted):
    w = W if weighted else None
    tw = torch.tensor(W) if weighted else None
    agree(lambda x, p: gc.cross_entropy(x, p, weight=w, reduction=reduction,
                                        label_smoothing=0.1),
          lambda x, p: F.cross_entropy(x, p, weight=tw, reduction=reduction,
                                       label_smoothing=0.1), X, P)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_with_weight_and_ignore_index(reduction):
    logp = np.log(P)
    t = np.where(T == -100, 2, T)
    t[1, 1] = 7  # ignore_index=7 is out of the classes' range: it only marks
    agree(lambda x, t: gc.nll_loss(x, t, weight=W, ignore_index=7, reduction=reduction),
          lambda x, t: F.nll_loss(x, t, weight=torch.tensor(W), ignore_index=7,
                                  reduction=reduction), logp, t)


def test_unbatched_and_two_dimensional_class_inputs():
    agree(lambda x, t: gc.cross_entropy(x, t), lambda x, t: F.cross_entropy(x, t),
          X[0, :, 0], np.array(2))
    agree(lambda x, t: gc.cross_entropy(x, t, label_smoothing=0.3),
          lambda x, t: F.cross_entropy(x, t, label_smoothing=0.3), X[:, :, 0], T[:, 1])


def test_every_target_ignored_gives_nan_as_pytorch():
    t = np.full((6, 3), -100)
    value, _, _ = graphc_value_and_grad(lambda x, t: gc.cross_entropy(x, t), X, t)
    assert np.isnan(value) and np.isnan(F.cross_entropy(torch.tensor(X), torch.tensor(t)).item())


def test_softmax_cross_entropy_is_cross_entropy_with_classes_last():
    last = np.moveaxis(X, 1, -1)
    agree(lambda x, t: gc.softmax_cross_entropy(x, t, label_smoothing=0.1, weight=W),
          lambda x, t: F.cross_entropy(x.movedim(-1, 1), t, label_smoothing=0.1,
                                       weight=torch.tensor(W)), last, T)


BINARY_X = RNG.uniform(0.02, 0.98, (5, 3))
BINARY_T = RNG.uniform(0, 1, (5, 3))
LOGITS = RNG.normal(0, 3, (5, 3))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    w = RNG.uniform(0.5, 2, (5, 1))
    agree(lambda x, t: gc.binary_cross_entropy(x, t, weight=w, reduction=reduction),
          lambda x, t: F.binary_cross_entropy(x, t, weight=torch.tensor(w),
                                              reduction=reduction), BINARY_X, BINARY_T)


def test_binary_cross_entropy_clamps_its_logs_at_minus_100():
    x, t = np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0])
    value, _, _ = graphc_value_and_grad(lambda x, t: gc.binary_cross_entropy(
        x, t, reduction="none"), x, t)
    np.testing.assert_allclose(value, F.binary_cross_entropy(
        torch.tensor(x), torch.tensor(t), reduction="none").numpy(), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, np.array([3.0, 0.5, 1.0])], ids=["", "pos"])
def test_binary_cross_entropy_with_logits(reduction, pos_weight):
    w = RNG.uniform(0.5, 2, (5, 1))
    tp = None if pos_weight is None else torch.tensor(pos_weight)
    agree(lambda x, t: gc.binary_cross_entropy_with_logits(x, t, weight=w, reduction=reduction,
                                                           pos_weight=pos_weight),
          lambda x, t: F.binary_cross_entropy_with_logits(
              x, t, weight=torch.tensor(w), reduction=reduction, pos_weight=tp),
          LOGITS, BINARY_T)


A, B = RNG.normal(size=(4, 5)), RNG.normal(size=(4, 5))
REGRESSION = {
    "mse": (lambda a, b, r: gc.mse_loss(a, b, reduction=r),
            lambda a, b, r: F.mse_loss(a, b, reduction=r)),
    "l1": (lambda a, b, r: gc.l1_loss(a, b, reduction=r),
           lambda a, b, r: F.l1_loss(a, b, reduction=r)),
    "smooth_l1": (lambda a, b, r: gc.smooth_l1_loss(a, b, reduction=r, beta=0.6),
                  lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.6)),
    "smooth_l1_beta0": (lambda a, b, r: gc.smooth_l1_loss(a, b, reduction=r, beta=0.0),
                        lambda a, b, r: F.smooth_l1_loss(a, b, reduction=r, beta=0.0)),
    "huber": (lambda a, b, r: gc.huber_loss(a, b, reduction=r, delta=0.8),
              lambda a, b, r: F.huber_loss(a, b, reduction=r, delta=0.8)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_losses(name, reduction):
    ours, theirs = REGRESSION[name]
    agree(lambda a, b: ours(a, b, reduction), lambda a, b: theirs(a, b, reduction), A, B)


def test_l1_gradient_is_zero_where_input_equals_target():
    a = np.array([1.0, 2.0, -3.0])
    _, grad, g = graphc_value_and_grad(lambda a, b: gc.l1_loss(a, b, reduction="none"), a,
                                       np.array([1.0, 0.0, -3.0]))
    assert grad[0] == 0.0 and grad[2] == 0.0 and grad[1] == g[1]


@pytest.mark.filterwarnings("ignore:reduction. .mean. divides:UserWarning")
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    logq = np.log(RNG.dirichlet(np.ones(5), 4))
    p = RNG.dirichlet(np.ones(5), 4)
    p[0, 1] = 0.0  # a zero target contributes 0, not NaN
    target = np.log(p + 1e-3) if log_target else p
    agree(lambda q, t: gc.kl_div(q, t, reduction=reduction, log_target=log_target),
          lambda q, t: F.kl_div(q, t, reduction=reduction, log_target=log_target), logq,
          target)


def test_float32_logits_keep_float32_with_float64_weights():
    x = gc.input("x", ("N", 4))
    t = gc.input("t", ("N",), "int64")
    loss = gc.cross_entropy(x, t, weight=np.array([1.0, 2.0, 3.0, 4.0]))
    assert loss.dtype == np.float32


def build_error(fn, match):
    with pytest.raises((gc.GraphError, gc.GraphTypeError), match=match):
        fn()


def test_bad_arguments_are_refused_naming_the_loss():
    x, t = gc.input("x", (3, 4)), gc.input("t", (3,), "int64")
    build_error(lambda: gc.cross_entropy(x, t, reduction="avg"), r"cross_entropy.*reduction")
    build_error(lambda: gc.cross_entropy(x, t, weight=np.ones(3)),
                r"cross_entropy.*weight must have shape \(4,\)")
    build_error(lambda: gc.cross_entropy(x, t, label_smoothing=1.5),
                "cross_entropy.*label_smoothing")
    build_error(lambda: gc.cross_entropy(x, gc.input("t2", (4,), "int64")),
                r"cross_entropy.*\(4,\).*\(3,\)")
    build_error(lambda: gc.cross_entropy(x, gc.input("p", (3, 5))),
                r"cross_entropy.*probabilities")
    build_error(lambda: gc.nll_loss(x, gc.input("f", (3,))), "nll_loss.*int class indices")
    build_error(lambda: gc.kl_div(x, x, reduction="batch"), "kl_div.*reduction")
    build_error(lambda: gc.smooth_l1_loss(x, x, beta=-1.0), "smooth_l1_loss.*beta")
    build_error(lambda: gc.huber_loss(x, x, delta=0.0), "huber_loss.*delta")
    build_error(lambda: gc.mse_loss(x, gc.input("y", (2, 4))), r"mse_loss.*\(2, 4\)")
    build_error(lambda: gc.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(3)),
                "binary_cross_entropy_with_logits.*pos_weight")
    with pytest.warns(UserWarning, match="mse_loss: using a target size"):
        gc.mse_loss(x, gc.input("y1", (3, 1)))


def test_a_target_out_of_range_raises_at_call_time():
    x, t = gc.input("x", (2, 3)), gc.input("t", (2,), "int64")
    f = gc.compile([x, t], gc.cross_entropy(x, t), backend="numpy")
    with pytest.raises(ValueError, match="out of range"):
        f(np.zeros((2, 3), np.float32), np.array([0, 3]))
