"""Optimizers, gradient clipping and schedules against torch.optim (the oracle of PyTorch's
update formulas): the same params after each of several steps, the same learning rate
(and momentum) after each schedule step."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc import optim

torch = pytest.importorskip("torch", reason="torch (the test extra) is the oracle")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(5, 3))
Y = RNG.normal(size=(5, 4))
W0, B0 = RNG.normal(size=(3, 4)), RNG.normal(size=4) * 0.1


def graphc_steps(make, steps, **options):
    """The params after each step of make([w, b]) on mean((tanh(x w + b) - y)^2)."""
    w, b = gc.param("w", W0.copy()), gc.param("b", B0.copy())
    x, y = gc.input("x", X.shape, "float64"), gc.input("y", Y.shape, "float64")
    loss = gc.mean((gc.tanh(x @ w + b) - y) ** 2)
    opt = make([w, b])
    step = gc.compile([x, y], loss, updates=opt.updates(loss), backend="numpy", **options)
    history = []
    for k in range(steps):
        step(X * (1 + 0.1 * k), Y)  # a gradient that changes from step to step
        history.append((w.value.copy(), b.value.copy()))
    return history


def torch_steps(make, steps, clip=None):
    w = torch.tensor(W0.copy(), requires_grad=True)
    b = torch.tensor(B0.copy(), requires_grad=True)
    opt = make([w, b])
    history = []
    for k in range(steps):
        opt.zero_grad()
        x = torch.tensor(X * (1 + 0.1 * k))
        loss = ((torch.tanh(x @ w + b) - torch.tensor(Y)) ** 2).mean()
        loss.backward()
        if clip is not None:
            clip([w, b])
        opt.step()
        history.append((w.detach().numpy().copy(), b.detach().numpy().copy()))
    return history


CONFIGS = {
    "sgd momentum nesterov wd": (
        lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam wd": (lambda p: optim.Adam(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
                lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
    "adamw": (lambda p: optim.AdamW(p, lr=0.05, weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1)),
    "rmsprop": (lambda p: optim.RMSprop(p, lr=0.01),
                lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "rmsprop centered momentum wd": (
        lambda p: optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                weight_decay=0.05),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                      weight_decay=0.05)),
    "adagrad": (lambda p: optim.Adagrad(p, lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adagrad decay init wd": (
        lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01,
                                initial_accumulator_value=0.2),
        lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.01,
                                      initial_accumulator_value=0.2)),
    "adadelta": (lambda p: optim.Adadelta(p), lambda p: torch.optim.Adadelta(p)),
    "adadelta rho wd": (lambda p: optim.Adadelta(p, lr=0.5, rho=0.8, weight_decay=0.1),
                        lambda p: torch.optim.Adadelta(p, lr=0.5, rho=0.8, weight_decay=0.1)),
}


def assert_same_histories(ours, theirs):
    for k, ((w, b), (tw, tb)) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(w, tw, rtol=1e-10, atol=1e-13, err_msg=f"w after step {k}")
        np.testing.assert_allclose(b, tb, rtol=1e-10, atol=1e-13, err_msg=f"b after step {k}")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_optimizer_steps_match_torch(name):
    ours, theirs = CONFIGS[name]
    assert_same_histories(graphc_steps(ours, 4), torch_steps(theirs, 4))


CLIPS = {
    "norm": ({"clip_grad_norm": 0.05},
             lambda p: torch.nn.utils.clip_grad_norm_(p, 0.05)),
    "norm inf": ({"clip_grad_norm": 0.02, "norm_type": float("inf")},
                 lambda p: torch.nn.utils.clip_grad_norm_(p, 0.02, norm_type=float("inf"))),
    "norm 1": ({"clip_grad_norm": 0.1, "norm_type": 1},
               lambda p: torch.nn.utils.clip_grad_norm_(p, 0.1, norm_type=1)),
    "norm above the gradient's": ({"clip_grad_norm": 100.0},
                                  lambda p: torch.nn.utils.clip_grad_norm_(p, 100.0)),
    "value": ({"clip_grad_value": 0.01},
              lambda p: torch.nn.utils.clip_grad_value_(p, 0.01)),
}


@pytest.mark.parametrize("name", list(CLIPS))
def test_gradient_clipping_matches_torch_utils(name):
    options, clip = CLIPS[name]
    ours = graphc_steps(lambda p: optim.SGD(p, lr=0.5, momentum=0.5, **options), 3)
    theirs = torch_steps(lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.5), 3, clip=clip)
    assert_same_histories(ours, theirs)


def test_clipping_runs_in_the_compiled_step_on_llvm():
    options = {"clip_grad_norm": 0.05, "clip_grad_value": 0.03}
    ours = graphc_steps(lambda p: optim.Adam(p, lr=0.1, **options), 3)
    w, b = gc.param("w", W0.copy()), gc.param("b", B0.copy())
    x, y = gc.input("x", X.shape, "float64"), gc.input("y", Y.shape, "float64")
    loss = gc.mean((gc.tanh(x @ w + b) - y) ** 2)
    step = gc.compile([x, y], loss, updates=optim.Adam([w, b], lr=0.1, **options).updates(loss))
    for k in range(3):
        step(X * (1 + 0.1 * k), Y)
    np.testing.assert_allclose(w.value, ours[-1][0], rtol=1e-10)

    def clip_both(p):
        torch.nn.utils.clip_grad_value_(p, 0.03)
        torch.nn.utils.clip_grad_norm_(p, 0.05)
    theirs = torch_steps(lambda p: torch.optim.Adam(p, lr=0.1), 3, clip=clip_both)
    assert_same_histories(ours, theirs)


def test_bad_clipping_options_are_refused():
    w = gc.param("w", np.ones(2))
    with pytest.raises(ValueError, match="clip_grad_norm"):
        optim.SGD([w], clip_grad_norm=0.0)
    with pytest.raises(ValueError, match="clip_grad_value"):
        optim.Adam([w], clip_grad_value=-1.0)
    with pytest.raises(ValueError, match="norm_type"):
        optim.RMSprop([w], clip_grad_norm=1.0, norm_type=0)


# ----- schedules ----------------------------------------------------------------------------
def lr_sequences(ours_make, theirs_make, steps, opt="sgd", metrics=None):
    """The learning rate (and momentum) at construction and after each step, both ways."""
    p = gc.param("p", np.ones(2))
    go = {"sgd": lambda: optim.SGD([p], lr=0.5, momentum=0.9),
          "adam": lambda: optim.Adam([p], lr=0.5)}[opt]()
    tp = torch.nn.Parameter(torch.ones(2))
    to = {"sgd": lambda: torch.optim.SGD([tp], lr=0.5, momentum=0.9),
          "adam": lambda: torch.optim.Adam([tp], lr=0.5)}[opt]()
    ours, theirs = ours_make(go), theirs_make(to)

    def momentum_of_torch():
        group = to.param_groups[0]
        return group["betas"][0] if opt == "adam" else group["momentum"]

    ours_seq = [(go.learning_rate, go.momentum)]
    theirs_seq = [(to.param_groups[0]["lr"], momentum_of_torch())]
    for k in range(steps):
        to.step()
        if metrics is None:
            ours.step()
            theirs.step()
        else:
            ours.step(metrics[k])
            theirs.step(metrics[k])
        ours_seq.append((go.learning_rate, go.momentum))
        theirs_seq.append((to.param_groups[0]["lr"], momentum_of_torch()))
    return np.array(ours_seq), np.array(theirs_seq)


S = torch.optim.lr_scheduler
SCHEDULES = {
    "step": (lambda o: optim.StepLR(o, 3, gamma=0.5), lambda o: S.StepLR(o, 3, gamma=0.5)),
    "multistep": (lambda o: optim.MultiStepLR(o, [2, 5, 5], 0.3),
                  lambda o: S.MultiStepLR(o, [2, 5, 5], 0.3)),
    "exponential": (lambda o: optim.ExponentialLR(o, 0.8), lambda o: S.ExponentialLR(o, 0.8)),
    "linear warmup": (lambda o: optim.LinearLR(o, start_factor=0.1, total_iters=4),
                      lambda o: S.LinearLR(o, start_factor=0.1, total_iters=4)),
    "linear decay": (lambda o: optim.LinearLR(o, 1.0, 0.25, 6),
                     lambda o: S.LinearLR(o, 1.0, 0.25, 6)),
    "lambda": (lambda o: optim.LambdaLR(o, lambda e: 1 / (1 + e)),
               lambda o: S.LambdaLR(o, lambda e: 1 / (1 + e))),
    "cosine past T_max": (lambda o: optim.CosineAnnealingLR(o, 4, 0.01),
                          lambda o: S.CosineAnnealingLR(o, 4, 0.01)),
    "sequential warmup cosine": (
        lambda o: optim.SequentialLR(o, [optim.LinearLR(o, 0.2, total_iters=3),
                                         optim.CosineAnnealingLR(o, 5)], [3]),
        lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.2, total_iters=3),
                                     S.CosineAnnealingLR(o, 5)], [3])),
    "sequential three": (
        lambda o: optim.SequentialLR(o, [optim.ExponentialLR(o, 0.5),
                                         optim.StepLR(o, 2), optim.LinearLR(o)], [2, 5]),
        lambda o: S.SequentialLR(o, [S.ExponentialLR(o, 0.5), S.StepLR(o, 2), S.LinearLR(o)],
                                 [2, 5])),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedules_match_torch(name):
    ours, theirs = lr_sequences(*SCHEDULES[name], steps=10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


ONE_CYCLE = {
    "cos sgd": (dict(max_lr=1.0, total_steps=20), "sgd"),
    "linear three phase adam": (dict(max_lr=0.3, epochs=4, steps_per_epoch=5,
                                     anneal_strategy="linear", three_phase=True), "adam"),
    "no momentum cycle": (dict(max_lr=0.3, total_steps=20, cycle_momentum=False,
                               pct_start=0.5, div_factor=10.0, final_div_factor=100.0), "sgd"),
}


@pytest.mark.parametrize("name", list(ONE_CYCLE))
def test_one_cycle_matches_torch(name):
    kwargs, opt = ONE_CYCLE[name]
    ours, theirs = lr_sequences(lambda o: optim.OneCycleLR(o, **kwargs),
                                lambda o: S.OneCycleLR(o, **kwargs), steps=20, opt=opt)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_one_cycle_momentum_is_used_by_the_compiled_step():
    """The cycled momentum is a state param: the step after a schedule step uses it."""
    p = gc.param("p", np.array([1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    schedule = optim.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    step = gc.compile([], [], updates=opt.updates(gc.sum(p * 2.0)), backend="numpy")
    tp = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    to = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    ts = S.OneCycleLR(to, max_lr=1.0, total_steps=10)
    for _ in range(6):
        step()
        schedule.step()
        to.zero_grad()
        (tp * 2.0).sum().backward()
        to.step()
        ts.step()
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-12)


def test_one_cycle_refuses_stepping_past_total_steps_and_a_built_step():
    p = gc.param("p", np.ones(1))
    opt = optim.Adagrad([p])
    with pytest.raises(ValueError, match="no momentum or beta1"):
        optim.OneCycleLR(opt, 1.0, total_steps=3)
    schedule = optim.OneCycleLR(opt, 1.0, total_steps=3, cycle_momentum=False)
    for _ in range(3):
        schedule.step()
    with pytest.raises(ValueError, match="total_steps=3"):
        schedule.step()
    adam = optim.Adam([p])
    adam.updates(gc.sum(p))
    with pytest.raises(RuntimeError, match="already built"):
        optim.OneCycleLR(adam, 1.0, total_steps=3)


def test_one_cycle_gives_plain_sgd_a_momentum_as_pytorch():
    ours, theirs = lr_sequences(lambda o: optim.OneCycleLR(o, 1.0, total_steps=8),
                                lambda o: S.OneCycleLR(o, 1.0, total_steps=8), steps=8)
    p = gc.param("p", np.ones(1))
    opt = optim.SGD([p], lr=0.1)
    optim.OneCycleLR(opt, 1.0, total_steps=8)
    assert opt.momentum == pytest.approx(0.95) and opt.velocity is not None
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


PLATEAU = {
    "min rel": dict(patience=2, factor=0.5),
    "min abs cooldown floor": dict(patience=1, threshold=0.05, threshold_mode="abs", cooldown=2,
                                   min_lr=0.1, factor=0.5),
    "max rel": dict(mode="max", patience=1, factor=0.2),
}


@pytest.mark.parametrize("name", list(PLATEAU))
def test_reduce_on_plateau_matches_torch(name):
    kwargs = PLATEAU[name]
    metrics = [1.0, 0.9, 0.89, 0.9, 0.95, 0.7, 0.7, 0.71, 0.69, 0.8, 0.9, 1.0, 0.5, 0.5, 0.5]
    ours, theirs = lr_sequences(lambda o: optim.ReduceLROnPlateau(o, **kwargs),
                                lambda o: S.ReduceLROnPlateau(o, **kwargs),
                                steps=len(metrics), metrics=metrics)
    np.testing.assert_allclose(ours[:, 0], theirs[:, 0], rtol=1e-12)
    assert len(set(ours[:, 0])) > 1  # the learning rate did fall


def test_schedule_state_round_trips():
    p = gc.param("p", np.ones(1))
    opt = optim.SGD([p], lr=1.0)
    schedule = optim.SequentialLR(opt, [optim.LinearLR(opt, 0.5, total_iters=2),
                                        optim.ExponentialLR(opt, 0.9)], [2])
    for _ in range(4):
        schedule.step()
    state = schedule.state_dict()
    assert all(isinstance(v, (int, float)) for v in state.values())
    expected = [schedule.step() for _ in range(3)]
    schedule.load_state_dict(state)
    assert [schedule.step() for _ in range(3)] == expected
    plateau = optim.ReduceLROnPlateau(optim.SGD([p], lr=1.0))
    assert all(np.isfinite(v) for v in plateau.state_dict().values())
