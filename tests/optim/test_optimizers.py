"""Optimizers against hand-computed steps; their state lives in params updated by the step."""

import math

import numpy as np
import pytest

import graphc as gc
from graphc import optim


def linear_problem(w0, c, make_opt):
    """loss = sum(c * w): the gradient is the constant c, so each step is easy by hand."""
    w = gc.param("w", np.array(w0, np.float64))
    loss = gc.sum(w * gc.constant(np.array(c, np.float64)))
    opt = make_opt([w])
    step = gc.compile([], [loss], updates=opt.updates(loss), backend="numpy")
    return w, opt, step


def test_sgd_plain_step():
    w, _, step = linear_problem([1.0, -2.0], [0.5, 4.0], lambda p: optim.SGD(p, lr=0.1))
    step()
    np.testing.assert_allclose(w.value, [0.95, -2.4], rtol=1e-15)


def test_sgd_momentum_accumulates_velocity():
    w, opt, step = linear_problem([1.0], [2.0], lambda p: optim.SGD(p, lr=0.1, momentum=0.9))
    step()  # v = 2, w = 1 - 0.2
    np.testing.assert_allclose(w.value, [0.8])
    step()  # v = 0.9 * 2 + 2 = 3.8, w = 0.8 - 0.38
    np.testing.assert_allclose(w.value, [0.42])
    np.testing.assert_allclose(opt.named_state()["velocity.0"].value, [3.8])


def test_sgd_nesterov_looks_ahead():
    w, _, step = linear_problem([1.0], [2.0], lambda p: optim.SGD(p, lr=0.1, momentum=0.9,
                                                                  nesterov=True))
    step()  # v = 2, d = 2 + 0.9 * 2 = 3.8
    np.testing.assert_allclose(w.value, [0.62])
    step()  # v = 3.8, d = 2 + 0.9 * 3.8 = 5.42
    np.testing.assert_allclose(w.value, [0.62 - 0.542])


def test_sgd_weight_decay_adds_to_the_gradient():
    w, _, step = linear_problem([1.0, -2.0], [0.0, 1.0],
                                lambda p: optim.SGD(p, lr=0.1, weight_decay=0.5))
    step()  # g = c + 0.5 w = [0.5, 0]
    np.testing.assert_allclose(w.value, [0.95, -2.0])


def test_adam_first_steps_by_hand():
    w, opt, step = linear_problem([1.0], [2.0], lambda p: optim.Adam(p, lr=0.1))
    step()
    # m = 0.1 * 2, v = 0.001 * 4; corrected: m^ = 2, v^ = 4; step = 0.1 * 2 / (2 + 1e-8)
    np.testing.assert_allclose(w.value, [1 - 0.1 * 2 / (2 + 1e-8)], rtol=1e-15)
    step()
    # m = 0.9*0.2 + 0.2 = 0.38 -> / 0.19 = 2; v = 0.999*0.004 + 0.004 -> / 0.001999 = 4
    np.testing.assert_allclose(w.value, [1 - 0.2 * 2 / (2 + 1e-8)], rtol=1e-14)
    state = opt.named_state()
    assert state["step"].value == 2 and state["step"].dtype == np.int64
    np.testing.assert_allclose(state["exp_avg.0"].value, [0.38])
    np.testing.assert_allclose(state["exp_avg_sq.0"].value, [0.999 * 0.004 + 0.004])


def adam_reference(w, grad_fn, steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    m = v = np.zeros_like(w)
    for t in range(1, steps + 1):
        g = grad_fn(w)
        if wd and not decoupled:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if decoupled:
            w = w * (1 - lr * wd)
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return w


@pytest.mark.parametrize("cls, wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.1)])
def test_adam_on_a_quadratic_matches_the_textbook_formula(cls, wd):
    w0 = np.array([1.0, -3.0, 0.25])
    w = gc.param("w", w0)
    loss = 0.5 * gc.sum(w * w * gc.constant(np.array([1.0, 2.0, 4.0])))
    opt = cls([w], lr=0.05, betas=(0.8, 0.99), weight_decay=wd)
    step = gc.compile([], [loss], updates=opt.updates(loss), backend="numpy")
    for _ in range(5):
        step()
    expected = adam_reference(w0, lambda v: v * [1.0, 2.0, 4.0], 5, 0.05, 0.8, 0.99, wd=wd,
                              decoupled=cls is optim.AdamW)
    np.testing.assert_allclose(w.value, expected, rtol=1e-13)


def test_float32_params_keep_their_dtype():
    w = gc.param("w", np.ones(3, np.float32))
    loss = gc.sum(w * w)
    for opt in (optim.SGD([w], 0.1, momentum=0.5), optim.Adam([w]), optim.AdamW([w])):
        updates = opt.updates(loss)
        assert all(new.dtype == p.dtype for p, new in updates.items())
        assert opt.lr.dtype == np.float32


def test_learning_rate_changes_without_recompiling():
    w, opt, step = linear_problem([0.0], [1.0], lambda p: optim.SGD(p, lr=0.1))
    step()
    opt.learning_rate = 0.5
    step()
    np.testing.assert_allclose(w.value, [-0.6])
    assert opt.learning_rate == 0.5


def test_bad_arguments_are_refused():
    w = gc.param("w", np.ones(2))
    with pytest.raises(ValueError, match="no params"):
        optim.SGD([])
    with pytest.raises(TypeError, match="not a gc.param"):
        optim.SGD([gc.input("x", (2,))])
    with pytest.raises(TypeError, match="float"):
        optim.SGD([gc.param("k", np.ones(2, np.int32))])
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([w, w])
    with pytest.raises(ValueError, match="lr"):
        optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([w], nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="does not depend"):
        optim.SGD([w, gc.param("unused", np.ones(1))]).updates(gc.sum(w))


def test_state_dict_round_trip():
    w, opt, step = linear_problem([1.0], [2.0], lambda p: optim.Adam(p, lr=0.1))
    step()
    saved = opt.state_dict()
    step()
    opt.load_state_dict(saved)
    assert opt.named_state()["step"].value == 1
    with pytest.raises(KeyError, match="missing"):
        opt.load_state_dict({"lr": saved["lr"]})


def test_step_schedule():
    opt = optim.SGD([gc.param("w", np.ones(1))], lr=1.0)
    schedule = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [schedule.step() for _ in range(5)]
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert opt.lr.value == 0.25


def test_cosine_schedule():
    opt = optim.SGD([gc.param("w", np.ones(1))], lr=1.0)
    schedule = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    lrs = [schedule.step() for _ in range(6)]
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 7)]
    np.testing.assert_allclose(lrs, expected)
    # eta_min at T_max, then back up as PyTorch's (cosine is periodic)
    assert lrs[3] == pytest.approx(0.1) and lrs[1] == pytest.approx(lrs[-1]) == pytest.approx(0.55)


# ----- only_if: a step that changes nothing where the condition is false ---------------------

OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd momentum nesterov decay": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                                        weight_decay=0.01),
    "adam": lambda ps: optim.Adam(ps, lr=0.1),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.1),
}


def _guarded_step(make, backend):
    rng = np.random.default_rng(0)
    w = gc.param("w", rng.normal(size=(4, 3)).astype(np.float32))
    b = gc.param("b", np.zeros(3, np.float32))
    x = gc.input("x", ("N", 4))
    go = gc.input("go", (), "bool")
    loss = gc.mean(gc.tanh(x @ w + b))
    opt = make([w, b])
    step = gc.compile([x, go], loss, updates=opt.updates(loss, only_if=go), backend=backend)
    state = [w, b, *opt.named_state().values()]
    return step, opt, state, rng.normal(size=(5, 4)).astype(np.float32)


@pytest.mark.parametrize("backend", ["numpy", "llvm"])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_only_if_false_changes_no_param_or_state(name, backend):
    step, opt, state, x = _guarded_step(OPTIMIZERS[name], backend)
    step(x, np.bool_(True))  # a real step first: nonzero moments, a step count
    before = [p.value.copy() for p in state]
    step(x, np.bool_(False))
    for p, old in zip(state, before):
        assert p.value.tobytes() == old.tobytes(), p.name
    step(x, np.bool_(True))
    assert any(p.value.tobytes() != old.tobytes() for p, old in zip(state, before))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_only_if_true_steps_exactly_as_without_it(name):
    guarded, _, guarded_state, x = _guarded_step(OPTIMIZERS[name], "numpy")
    guarded(x, np.bool_(True))
    rng = np.random.default_rng(0)
    w = gc.param("w", rng.normal(size=(4, 3)).astype(np.float32))
    b = gc.param("b", np.zeros(3, np.float32))
    xi = gc.input("x", ("N", 4))
    loss = gc.mean(gc.tanh(xi @ w + b))
    opt = OPTIMIZERS[name]([w, b])
    gc.compile([xi], loss, updates=opt.updates(loss), backend="numpy")(x)
    for p, q in zip(guarded_state, [w, b, *opt.named_state().values()]):
        assert p.value.tobytes() == q.value.tobytes(), p.name


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_only_if_keeps_each_update_one_fused_loop(name):
    """Built-in optimizers guard each state where they compute it, so the guard adds no
    kernel (a where around each finished update value would split the fused update)."""
    from graphc.passes.report import count_kernels

    guarded, *_ = _guarded_step(OPTIMIZERS[name], "numpy")
    w = gc.param("w", np.ones((4, 3), np.float32))
    b = gc.param("b", np.zeros(3, np.float32))
    x = gc.input("x", ("N", 4))
    go = gc.input("go", (), "bool")
    loss = gc.mean(gc.tanh(x @ w + b))
    plain = gc.compile([x, go], [loss, go], updates=OPTIMIZERS[name]([w, b]).updates(loss),
                       backend="numpy")
    assert count_kernels(guarded.program) <= count_kernels(plain.program)


def test_only_if_guards_what_a_custom_optimizer_leaves_unguarded():
    class Halve(optim.Optimizer):
        def step_updates(self, grads):
            return {p: p * 0.5 for p in self.params}

    w = gc.param("w", np.ones(3, np.float32))
    go = gc.input("go", (), "bool")
    step = gc.compile([go], [], updates=Halve([w], lr=0.1).updates(gc.sum(w), only_if=go),
                      backend="numpy")
    step(np.bool_(False))
    np.testing.assert_array_equal(w.value, [1, 1, 1])
    step(np.bool_(True))
    np.testing.assert_array_equal(w.value, [0.5, 0.5, 0.5])


def test_only_if_must_be_a_bool_scalar():
    w = gc.param("w", np.ones(3, np.float32))
    with pytest.raises(TypeError, match="only_if must be a bool scalar"):
        optim.SGD([w]).updates(gc.sum(w), only_if=gc.input("go", (3,), "bool"))
