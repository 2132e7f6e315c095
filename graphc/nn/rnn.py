"""LSTM and GRU over a sequence of static length, unrolled into the graph, with PyTorch's
arguments, gate order, param names and shapes (weight_ih_l0 (4H, I), weight_hh_l0 (4H, H),
bias_ih_l0, bias_hh_l0, ..._reverse for the backward direction), so a torch state_dict
loads. The input's projections for every time step are one matmul per layer and
direction; the recurrence is one (N, H) @ (H, gates H) matmul per step."""

from __future__ import annotations

import math

from graphc import dsl
from graphc.errors import build_error
from graphc.ir.node import Node
from graphc.nn import init as initializers
from graphc.nn.dropout import Dropout
from graphc.nn.module import Module, check_sizes
from graphc.shapes import shape_str


class _RNN(Module):
    """What LSTM and GRU share: sizes, params, layout handling and the layer loop."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *, rng=None, dtype="float32"):
        layer = type(self).__name__
        check_sizes(layer, input_size=input_size, hidden_size=hidden_size,
                    num_layers=num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0 <= dropout <= 1:
            raise ValueError(f"{layer}: dropout must be a probability in [0, 1], got "
                             f"{dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.dropout = float(dropout)
        self.directions = 2 if bidirectional else 1
        gen = initializers.generator(rng)
        bound = 1.0 / math.sqrt(hidden_size)  # PyTorch's init: U(-1/sqrt(H), 1/sqrt(H))
        name = initializers.unique_name(layer.lower())
        rows = self.gates * hidden_size
        for k in range(num_layers):
            size_in = input_size if k == 0 else hidden_size * self.directions
            for suffix in ("", "_reverse")[:self.directions]:
                shapes = {"weight_ih": (rows, size_in), "weight_hh": (rows, hidden_size)}
                if bias:
                    shapes.update({"bias_ih": (rows,), "bias_hh": (rows,)})
                for kind, shape in shapes.items():
                    attr = f"{kind}_l{k}{suffix}"
                    setattr(self, attr, dsl.param(f"{name}.{attr}", gen.uniform(
                        -bound, bound, shape).astype(dtype)))
        self.dropout_layers = [Dropout(self.dropout) for _ in range(num_layers - 1)]

    def _params(self, k: int, reverse: bool) -> tuple[Node, Node, Node | None, Node | None]:
        suffix = f"_l{k}" + ("_reverse" if reverse else "")
        get = lambda kind: getattr(self, kind + suffix, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _sequence(self, x) -> tuple[Node, bool]:
        """x as (N, L, I), and whether it was unbatched (L, I)."""
        (x,) = dsl.operands(x)
        layer = type(self).__name__
        form = "(N, L, I)" if self.batch_first else "(L, N, I)"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise build_error(layer, f"expected input {form} or (L, I) with I = "
                              f"{self.input_size}, got {shape_str(x.shape)}")
        unbatched = x.ndim == 2
        if unbatched:
            x = dsl.reshape(x, (1,) + x.shape)
        elif not self.batch_first:
            x = dsl.transpose(x, (1, 0, 2))
        if not isinstance(x.shape[1], int) or x.shape[1] < 1:
            raise build_error(layer, f"the sequence length must be static and positive, got "
                              f"{shape_str(x.shape)} (graphc unrolls the recurrence)")
        return x, unbatched

    def _initial(self, state, what: str, batch, unbatched: bool) -> list[Node | None]:
        """The initial (num_layers * directions, N, H) state as one (N, H) value per layer
        and direction (None: zeros)."""
        count = self.num_layers * self.directions
        if state is None:
            return [None] * count
        (state,) = dsl.operands(state)
        expected = (count, self.hidden_size) if unbatched else (count, batch, self.hidden_size)
        if len(state.shape) != len(expected) or any(
                isinstance(e, int) and isinstance(d, int) and d != e
                for d, e in zip(state.shape, expected)):
            raise build_error(type(self).__name__, f"{what} must have shape "
                              f"{shape_str(expected)}, got {shape_str(state.shape)}")
        if unbatched:
            state = dsl.reshape(state, (count, 1, self.hidden_size))
        return [state[j] for j in range(count)]

    def _run(self, x: Node, initial: list[list[Node | None]]):
        """Every layer over the sequence: (output (N, L, D*H), final states per slot)."""
        length = x.shape[1]
        finals: list[list[Node]] = []
        for k in range(self.num_layers):
            outputs = []
            for d in range(self.directions):
                slot = k * self.directions + d
                w_ih, w_hh, b_ih, b_hh = self._params(k, reverse=d == 1)
                projected = x @ dsl.transpose(w_ih)  # (N, L, G*H): one GEMM for all steps
                if b_ih is not None:
                    projected = projected + b_ih
                order = range(length - 1, -1, -1) if d == 1 else range(length)
                state = [s[slot] for s in initial]
                hs: list[Node | None] = [None] * length
                recurrent = dsl.transpose(w_hh)
                for t in order:
                    state = self._cell(projected[:, t, :], state, recurrent, b_hh)
                    hs[t] = state[0]
                outputs.append(dsl.concat([dsl.reshape(h, (h.shape[0], 1, self.hidden_size))
                                           for h in hs], axis=1))
                finals.append(state)
            x = outputs[0] if len(outputs) == 1 else dsl.concat(outputs, axis=2)
            if k < self.num_layers - 1:
                x = self.dropout_layers[k](x)
        return x, finals

    def _stack(self, values: list[Node], unbatched: bool) -> Node:
        stacked = dsl.concat([dsl.reshape(v, (1,) + v.shape) for v in values], axis=0)
        return stacked[:, 0, :] if unbatched else stacked

    def _output(self, out: Node, unbatched: bool) -> Node:
        if unbatched:
            return out[0]
        return out if self.batch_first else dsl.transpose(out, (1, 0, 2))

    def _gate(self, gates: Node, j: int) -> Node:
        return gates[:, j * self.hidden_size:(j + 1) * self.hidden_size]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


class LSTM(_RNN):
    """Long short-term memory: per step, with gates i, f, g, o (in that order) of
    W_ih x + b_ih + W_hh h + b_hh: c = sigmoid(f) c + sigmoid(i) tanh(g),
    h = sigmoid(o) tanh(c). lstm(x, (h0, c0)) returns (output, (h_n, c_n)) in PyTorch's
    layouts (batch_first for (N, L, I) inputs); h0 and c0 default to zeros. Dropout
    applies between layers in training mode."""

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, rng=None,
                 dtype="float32"):
        if proj_size:
            raise ValueError("LSTM: proj_size is not supported (only proj_size=0)")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, rng=rng, dtype=dtype)

    def forward(self, x, training: bool, hx=None):
        x, unbatched = self._sequence(x)
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise build_error("LSTM", "hx must be a pair (h0, c0)")
        h0, c0 = hx if hx is not None else (None, None)
        batch = x.shape[0]
        initial = [self._initial(h0, "h0", batch, unbatched),
                   self._initial(c0, "c0", batch, unbatched)]
        out, finals = self._run(x, initial)
        h_n = self._stack([h for h, _ in finals], unbatched)
        c_n = self._stack([c for _, c in finals], unbatched)
        return self._output(out, unbatched), (h_n, c_n)

    def _cell(self, projected: Node, state, recurrent: Node, b_hh: Node | None):
        h, c = state
        gates = projected if h is None else projected + h @ recurrent
        if b_hh is not None:
            gates = gates + b_hh
        i, f, g, o = (self._gate(gates, j) for j in range(4))
        i, f, o, g = dsl.sigmoid(i), dsl.sigmoid(f), dsl.sigmoid(o), dsl.tanh(g)
        c = i * g if c is None else f * c + i * g
        return [o * dsl.tanh(c), c]


class GRU(_RNN):
    """Gated recurrent unit: per step, with gates r, z, n (in that order):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr), z likewise,
    n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h = (1 - z) n + z h.
    gru(x, h0) returns (output, h_n) in PyTorch's layouts; h0 defaults to zeros."""

    gates = 3

    def forward(self, x, training: bool, hx=None):
        x, unbatched = self._sequence(x)
        initial = [self._initial(hx, "h0", x.shape[0], unbatched)]
        out, finals = self._run(x, initial)
        return self._output(out, unbatched), self._stack([h for (h,) in finals], unbatched)

    def _cell(self, projected: Node, state, recurrent: Node, b_hh: Node | None):
        (h,) = state
        hidden = None if h is None else h @ recurrent
        if b_hh is not None:
            hidden = b_hh if hidden is None else hidden + b_hh
        r_in, z_in, n_in = (self._gate(projected, j) for j in range(3))
        if hidden is None:  # no bias and a zero state: W_hh h + b_hh is 0
            r, z, n = dsl.sigmoid(r_in), dsl.sigmoid(z_in), dsl.tanh(n_in)
            return [(1.0 - z) * n]
        r_h, z_h, n_h = (hidden[..., j * self.hidden_size:(j + 1) * self.hidden_size]
                         for j in range(3))
        r, z = dsl.sigmoid(r_in + r_h), dsl.sigmoid(z_in + z_h)
        n = dsl.tanh(n_in + r * n_h)
        return [(1.0 - z) * n] if h is None else [(1.0 - z) * n + z * h]

