"""What a Trainer's step computes from the model's output and the targets: the loss and,
when accuracy is measured, how many predictions were right, for each form of target a
loss takes. A form it does not take is refused naming the loss, the output's and the
targets' shapes and dtypes, and what would fit.

    loss                   targets
    cross_entropy          int class labels: the output's shape without its class axis,
                           (N,) for (N, C) logits, (N, T) for (N, T, C); or class
                           probabilities or one-hot rows of the output's shape (float, or
                           int/bool one-hot rows, cast to the output's dtype)
    mse, l1, smooth_l1,    the output's shape (int/bool targets cast to the output's dtype)
    huber
    binary_cross_entropy   the output's shape, 0/1 or probabilities (cast likewise)
    a function             what the function takes; its failure is reported naming it
    (or a loss module: nn.CrossEntropyLoss(...), PyTorch's semantics, class axis 1)

loss_options: keyword arguments of the named loss's function (graphc/ops/losses.py):
cross_entropy takes label_smoothing, weight (one per class) and ignore_index (classes on
the output's last axis, as softmax_cross_entropy); binary_cross_entropy takes weight and
pos_weight; smooth_l1 takes beta and huber delta. The reduction is the Trainer's (the
mean), so it is not an option.

accuracy: the argmax over the output's last axis against the label, or against the
argmax of a probability target (an output with one column has no argmax to compare and is
refused); for binary_cross_entropy, logit > 0 against target > 0.5.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from graphc import dsl, dtypes
from graphc.errors import GraphError, GraphTypeError
from graphc.ir.node import Node
from graphc.nn.loss import CrossEntropyLoss, NLLLoss
from graphc.ops.losses import (
    binary_cross_entropy_with_logits,
    huber_loss,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
    softmax_cross_entropy,
)
from graphc.shapes import dims_equal, shape_str

LOSSES: dict[str, Callable[..., Node]] = {
    "cross_entropy": softmax_cross_entropy,
    "mse": mse_loss,
    "l1": l1_loss,
    "smooth_l1": smooth_l1_loss,
    "huber": huber_loss,
    "binary_cross_entropy": binary_cross_entropy_with_logits,
}
# The options each named loss takes (loss_options=...).
OPTIONS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("label_smoothing", "weight", "ignore_index"),
    "mse": (), "l1": (),
    "smooth_l1": ("beta",),
    "huber": ("delta",),
    "binary_cross_entropy": ("weight", "pos_weight"),
}


@dataclass(frozen=True)
class Built:
    """The graph values of one objective on one output: the scalar loss, the float32
    count of right predictions (None when accuracy is not measured), and whether each
    prediction is a row of the targets (probability targets) rather than an element."""

    loss: Node
    hits: Node | None
    per_row: bool

    def predictions(self, targets_size: int, row_length: int) -> int:
        """How many predictions a batch of targets holds (the accuracy's denominator)."""
        return targets_size // row_length if self.per_row and row_length else targets_size


@dataclass(frozen=True)
class Objective:
    """A loss (a name of LOSSES or a function of (output, target) graph values giving a
    scalar) and whether to count right predictions."""

    name: str
    fn: Callable[[Node, Node], Node]
    accuracy: bool
    builtin: bool
    options: tuple = ()  # (name, value) pairs of loss_options

    @classmethod
    def of(cls, loss, accuracy: bool | None, options: dict | None = None) -> Objective:
        """The objective of Trainer(loss=..., accuracy=..., loss_options=...): accuracy
        defaults to on for cross_entropy (and the class-index loss modules) only."""
        options = dict(options or {})
        if isinstance(loss, str):
            if loss not in LOSSES:
                raise ValueError(f"Trainer: loss must be one of {sorted(LOSSES)}, a function "
                                 f"or a loss module, got {loss!r}")
            unknown = sorted(set(options) - set(OPTIONS[loss]))
            if unknown:
                raise ValueError(f"Trainer: loss '{loss}' takes the options "
                                 f"{list(OPTIONS[loss])}, got {unknown}")
            accuracy = loss == "cross_entropy" if accuracy is None else accuracy
            fn = LOSSES[loss]
            return cls(loss, fn, bool(accuracy), True, tuple(options.items()))
        if options:
            raise ValueError("Trainer: loss_options apply to a named loss; a function or loss "
                             "module carries its own options")
        if not callable(loss):
            raise TypeError(f"Trainer: loss must be a name, a function or a loss module, got "
                            f"{loss!r}")
        if accuracy is None:
            accuracy = isinstance(loss, (CrossEntropyLoss, NLLLoss))
        name = getattr(loss, "__name__", type(loss).__name__)
        return cls(name, loss, bool(accuracy), False)

    def _loss(self, output: Node, target: Node) -> Node:
        return self.fn(output, target, **dict(self.options))

    @property
    def loss_fn(self) -> Callable[[Node, Node], Node]:
        """loss(output, target) with the loss options applied."""
        return functools.partial(self.fn, **dict(self.options)) if self.options else self.fn

    def build(self, output: Node, target: Node) -> Built:
        """The loss (and hits) of `output` against `target` (an input of the targets)."""
        form = _form(output, target)
        if self.builtin:
            loss = self._builtin_loss(output, target, form)
        else:
            loss = self._custom_loss(output, target)
        hits = self._hits(output, target, form) if self.accuracy else None
        return Built(loss, hits, form == "dense" and self.name != "binary_cross_entropy")

    # ----- losses ---------------------------------------------------------------------------
    def _builtin_loss(self, output: Node, target: Node, form: str) -> Node:
        if self.name == "cross_entropy":
            if form == "labels" and dtypes.is_int(target.dtype):
                return self._loss(output, target)
            if form == "dense":
                return self._loss(output, _as(target, output.dtype))
            hint = ("cast the labels to an integer dtype (y.astype(np.int32))"
                    if form == "labels" else "")
            raise self._refuse(output, target, "integer class labels of shape "
                               f"{shape_str(output.shape[:-1])} or class probabilities (one-hot "
                               f"rows) of the output's shape {shape_str(output.shape)}", hint)
        if form == "dense":
            return self._loss(output, _as(target, output.dtype))
        hint = ""
        if form == "labels" and output.shape[-1] == 1:
            hint = (f"add the axis: y[:, None] or y.reshape({shape_str(output.shape)}) "
                    f"(broadcasting {shape_str(target.shape)} against "
                    f"{shape_str(output.shape)} would compare every output with every target)")
        elif form == "labels" and dtypes.is_int(target.dtype):
            hint = ("these look like class labels: use loss='cross_entropy', or one-hot "
                    f"encode them (np.eye({output.shape[-1]}, dtype=np.float32)[y])")
        raise self._refuse(output, target, f"targets of the output's shape "
                           f"{shape_str(output.shape)}", hint)

    def _custom_loss(self, output: Node, target: Node) -> Node:
        try:
            loss = self.fn(output, target)
        except (GraphError, GraphTypeError) as exc:
            raise type(exc)(f"Trainer: the loss function {self.name}(output, target) failed "
                            f"for the output {_describe(output)} and the targets "
                            f"{_describe(target)}: {exc}") from exc
        if not isinstance(loss, Node) or loss.ndim != 0:
            got = _describe(loss) if isinstance(loss, Node) else type(loss).__name__
            raise GraphError(f"Trainer: the loss function {self.name}(output, target) must "
                             f"return a scalar graph value, got {got}")
        return loss

    def _refuse(self, output: Node, target: Node, wanted: str, hint: str) -> GraphError:
        return GraphError(f"Trainer: loss '{self.name}' takes {wanted}; got targets "
                          f"{_describe(target)} for the output {_describe(output)}"
                          + (f": {hint}" if hint else ""))

    # ----- accuracy -------------------------------------------------------------------------
    def _hits(self, output: Node, target: Node, form: str) -> Node:
        """How many predictions equal their targets, as a float32 count."""
        if self.name == "binary_cross_entropy" and form == "dense":
            hits = dsl.equal(dsl.greater(output, 0.0),
                             dsl.greater(_as(target, output.dtype), 0.5))
        elif form == "labels" and dtypes.is_int(target.dtype):
            hits = dsl.equal(dsl.argmax(output, -1), dsl.cast(target, "int64"))
        elif form == "dense" and output.ndim >= 2 and not dims_equal(output.shape[-1], 1):
            hits = dsl.equal(dsl.argmax(output, -1), dsl.argmax(target, -1))
        else:
            raise GraphError(f"Trainer: accuracy compares the argmax of the output's last axis "
                             f"with integer labels or with the argmax of probability targets; "
                             f"got targets {_describe(target)} for the output "
                             f"{_describe(output)} (pass accuracy=False)")
        return dsl.sum(dsl.cast(hits, "float32"))


def _same_shape(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(dims_equal(x, y) for x, y in zip(a, b))


def _form(output: Node, target: Node) -> str:
    """"dense" (the targets have the output's shape), "labels" (its shape without the last
    axis) or "other"."""
    if _same_shape(target.shape, output.shape):
        return "dense"
    if output.ndim >= 1 and _same_shape(target.shape, output.shape[:-1]):
        return "labels"
    return "other"


def _as(value: Node, dtype) -> Node:
    return value if value.dtype == dtype else dsl.cast(value, dtype)


def _describe(value: Node) -> str:
    return f"{shape_str(value.shape)} {value.dtype.name}"
