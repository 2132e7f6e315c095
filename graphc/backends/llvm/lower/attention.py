"""scaled_dot_product_attention and its backward (graphc/ops/attention.py) as fused
kernels that never hold an (L, S) matrix: one query row at a time.

Forward, per unit (one batch element and query head, a chunk of its rows): the head's
keys are packed transposed (E x S) and its values (S x Ev) into the thread's scratch;
then for each query row, its S scores (a row vector times the packed keys), the masked,
shifted exponentials and their sum (the softmax of the row, log-sum-exp style: a row that
may attend nothing gives zeros), dropout, and the output row (the weights times the packed
values). Backward, per key/value head (so its dk and dv accumulate in one thread's
scratch, summed over the GQA group): each query row's weights are recomputed the same way
(FlashAttention's recomputation: only O(S) per row lives at a time), then
D = dout . out, dv += p' dout, dp = dout V^T, ds = p (dp' - D), dq = ds K * scale and
dk += ds q * scale (p' and dp' with the dropout factors). A float mask's gradient (ds)
is written row by row by a kernel of its own, built only when it is needed.

Every operand is read through its strides (transposed heads from a projection are
views), leading axes broadcast by zero strides. Rows are padded to whole vectors of the
target, and the products are vector blocks (attention_rows.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from graphc.backends.llvm.codegen.arith import smin
from graphc.backends.llvm.codegen.expr import ExpressionEmitter
from graphc.backends.llvm.codegen.irtypes import F64, convert, i64
from graphc.backends.llvm.codegen.kernel import decompose, dot
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.lower.attention_rows import (
    ROWS,
    Rows,
    Scratch,
    padded,
    row_chunks,
    slots_for,
)
from graphc.backends.llvm.lower.random import _mix, u64
from graphc.backends.llvm.schedule.views import contiguous_strides
from graphc.ops.attention import Geometry, dropout_scale
from graphc.ops.random import splitmix64


@dataclass
class Canon:
    """An operand addressed in canonical axes (batch..., [heads], rows, cols): its
    pointer and the element stride of each (0 where it broadcasts)."""

    ptr: ir.Value
    batch: list[int]
    head: int
    row: int
    col: int


def canonical(x, batch: tuple[int, ...], heads: bool) -> Canon:
    strides = list(x.strides) if x.strides is not None else contiguous_strides(x.shape)
    rank = len(batch) + heads + 2
    pad = rank - len(x.shape)
    shape, strides = (1,) * pad + tuple(x.shape), [0] * pad + strides
    s = [0 if d == 1 else st for d, st in zip(shape, strides)]
    return Canon(x.ptr, s[:len(batch)], s[len(batch)] if heads else 0, s[-2], s[-1])


def _geometry(node, shapes) -> Geometry:
    return Geometry.of(tuple(shapes[0]), tuple(shapes[1]), tuple(shapes[2]), node.attrs["gqa"])


def _masked(node) -> bool:
    return len(node.inputs) in (4, 6)


class _Attention:
    """What the three kernels share: geometry, operands, scratch, the softmax of a row."""

    def __init__(self, k, node, ins, scratch_ptr, layout: Scratch):
        self.k, self.b, self.node = k, k.b, node
        self.attrs = node.attrs
        g = self.g = _geometry(node, [x.shape for x in ins])
        self.dtype = np.dtype(ins[0].dtype)
        self.rows = Rows(k, self.dtype)
        self.batch = tuple(int(d) for d in g.batch)
        self.nb = int(np.prod(self.batch, dtype=np.int64))
        self.L, self.S, self.E, self.Ev = int(g.L), int(g.S), int(g.E), int(g.Ev)
        heads = g.gqa
        self.q, self.key, self.v = (canonical(x, self.batch, heads) for x in ins[:3])
        self.mask = canonical(ins[3], self.batch, heads) if _masked(node) else None
        self.mask_dtype = ins[3].dtype if _masked(node) else None
        if len(ins) >= 5:
            self.out, self.dout = (canonical(x, self.batch, heads) for x in ins[-2:])
        self.layout = layout
        self.scratch_ptr = scratch_ptr
        self.math = ExpressionEmitter(k.b, k.mc, self.dtype, {})

    # ----- units of work ------------------------------------------------------------------------
    def each_unit(self, units: int, body) -> None:
        """body(unit, scratch buffers) for this thread's share of range(units); threads
        beyond the scratch slots take none."""
        k, b = self.k, self.b
        slots = self.layout.slots
        workers = smin(b, k.nthreads, i64(slots))
        chunk = b.sdiv(b.add(i64(units), b.sub(workers, i64(1))), workers)
        start = smin(b, b.mul(k.tid, chunk), i64(units))
        stop = smin(b, b.add(start, chunk), i64(units))
        stop = b.select(b.icmp_signed("<", k.tid, i64(slots)), stop, start)
        with k.when(b.icmp_signed("<", start, stop)):
            buffers = self.layout.pointers(b, self.scratch_ptr, k.tid)
            with k.loop(start, stop, "unit") as unit:
                body(unit, buffers)

    def batch_offset(self, x: Canon, bi: ir.Value) -> ir.Value:
        if not self.batch:
            return i64(0)
        return dot(self.b, decompose(self.b, bi, list(self.batch)), x.batch)

    # ----- packing --------------------------------------------------------------------------
    def pack_keys(self, buf, base: ir.Value, transposed: bool) -> None:
        """The head's keys at `base` into buf: (E x S_pad) transposed, or (S x E_pad)."""
        self._pack(buf, self.key, self.E, base, transposed)

    def pack_values(self, buf, base: ir.Value, transposed: bool) -> None:
        """The head's values at `base` into buf: (Ev x S_pad) transposed, or (S x Ev_pad)."""
        self._pack(buf, self.v, self.Ev, base, transposed)

    def _pack(self, buf, x: Canon, width: int, base: ir.Value, transposed: bool) -> None:
        """S rows of `width` of x at `base` into buf, padded to whole vectors along the
        packed row: (width x S_pad) transposed, or (S x width_pad)."""
        r = self.rows
        if transposed:
            s_pad = padded(self.S, self.dtype)
            if s_pad != self.S:
                r.fill(buf, width * s_pad)
            r.gather(buf, 1, s_pad, self.S, width, x.ptr, base, x.row, x.col)
        else:
            w_pad = padded(width, self.dtype)
            if w_pad != width:
                r.fill(buf, self.S * w_pad)
            r.gather(buf, w_pad, 1, self.S, width, x.ptr, base, x.row, x.col)

    def load_row(self, buf, x: Canon, base: ir.Value, count: int) -> None:
        """buf[0:count] = the row of x at base (buf's padding is left as it is)."""
        self.rows.gather(buf, 0, 1, 1, count, x.ptr, base, 0, x.col)

    # ----- one row of weights ------------------------------------------------------------------
    def weights(self, s: ir.Value, p: ir.Value, keep: ir.Value, i: ir.Value, lead: ir.Value,
                mask_base: ir.Value | None) -> None:
        """From s[0:S] (the row's raw dot products): p[0:S] = the attention weights of query
        row i before dropout (zeros where nothing may be attended), and, with dropout,
        keep[0:S] = each weight's dropout factor (0 or 1/(1-p)). `lead` is the row's index
        among the output's leading axes; s is left holding the masked, scaled scores."""
        k, b, r = self.k, self.b, self.rows
        top = k.alloca(r.t)
        b.store(r.number(-math.inf), top)
        maximum = k.mc.intrinsic("maximum", r.t, 2)
        with k.loop(0, self.S, "c") as c:
            value = b.fmul(r.load(s, c), r.number(self.attrs["scale"]))
            masked = None
            if self.mask is not None:
                at = b.add(mask_base, b.mul(c, i64(self.mask.col)))
                if self.mask_dtype == np.bool_:
                    flag = k.load(self.mask.ptr, self.mask_dtype, at)
                    masked = b.icmp_unsigned("==", flag, ir.Constant(flag.type, 0))
                else:
                    value = b.fadd(value, r.load(self.mask.ptr, at))
            if self.attrs["causal"]:
                later = b.icmp_signed(">", c, i)
                masked = later if masked is None else b.or_(masked, later)
            if masked is not None:
                value = b.select(masked, r.number(-math.inf), value)
            r.store(value, s, c)
            b.store(b.call(maximum, [b.load(top, typ=r.t), value]), top)
        m = b.load(top, typ=r.t)
        nothing = b.fcmp_ordered("==", m, r.number(-math.inf))
        shift = b.select(nothing, r.number(0), m)
        total = k.alloca(r.t)
        b.store(r.number(0), total)
        with k.loop(0, self.S, "c") as c:
            e = self.math.exp(b.fsub(r.load(s, c), shift))
            r.store(e, p, c)
            b.store(b.fadd(b.load(total, typ=r.t), e, flags=("reassoc",)), total)
        inverse = b.select(nothing, r.number(0),
                           b.fdiv(r.number(1), b.load(total, typ=r.t)))
        with k.loop(0, self.S, "c") as c:
            r.store(b.fmul(r.load(p, c), inverse), p, c)
        if self.attrs["dropout"]:
            self._dropout_factors(keep, i, lead)

    def _dropout_factors(self, keep, i: ir.Value, lead: ir.Value) -> None:
        """keep[c] = 1/(1-p) where the generator keeps weight (lead, i, c), else 0: the
        uniform of (seed, step, flat index of the (..., L, S) weights), as gc.dropout."""
        k, b, r = self.k, self.b, self.rows
        with np.errstate(over="ignore"):
            seed = int(splitmix64(np.array(self.attrs["seed"] % 2**64, dtype=np.uint64)))
        key = _mix(b, b.xor(u64(seed), k.step))
        row = b.mul(b.add(b.mul(lead, i64(self.L)), i), i64(self.S))
        rate = r.number(self.attrs["dropout"])
        kept, dropped = r.number(dropout_scale(self.attrs["dropout"])), r.number(0)
        with k.loop(0, self.S, "c") as c:
            bits = _mix(b, b.add(key, b.add(row, c)))
            u = b.fmul(b.uitofp(b.lshr(bits, i64(40)), F64), ir.Constant(F64, 1.0 / (1 << 24)))
            u = convert(b, u, np.dtype("float64"), self.dtype)
            r.store(b.select(b.fcmp_ordered(">=", u, rate), kept, dropped), keep, c)

    def row_dot(self, x: Canon, x_base: ir.Value, y: Canon, y_base: ir.Value,
                count: int) -> ir.Value:
        """sum over j < count of x[x_base + j] * y[y_base + j] (along their columns)."""
        k, b, r = self.k, self.b, self.rows
        total = k.alloca(r.t)
        b.store(r.number(0), total)
        with k.loop(0, count, "d") as j:
            xv = r.load(x.ptr, b.add(x_base, b.mul(j, i64(x.col))))
            yv = r.load(y.ptr, b.add(y_base, b.mul(j, i64(y.col))))
            b.store(b.fadd(b.load(total, typ=r.t), b.fmul(xv, yv), flags=("reassoc",)), total)
        return b.load(total, typ=r.t)

    def scores_grad(self, p: ir.Value, dp: ir.Value, keep: ir.Value, ds: ir.Value,
                    d: ir.Value, factor: float) -> None:
        """ds[c] = p[c] * (dp[c] * keep[c] - d) * factor for c < S (keep: with dropout)."""
        k, b, r = self.k, self.b, self.rows
        with k.loop(0, self.S, "c") as c:
            dpc = r.load(dp, c)
            if self.attrs["dropout"]:
                dpc = b.fmul(dpc, r.load(keep, c))
            value = b.fmul(r.load(p, c), b.fsub(dpc, d))
            if factor != 1.0:
                value = b.fmul(value, r.number(factor))
            r.store(value, ds, c)

    def each_block(self, first: ir.Value, stop: ir.Value, body) -> None:
        """body(i0, n) for the blocks of ROWS rows i0 .. i0 + n - 1 in [first, stop)."""
        b = self.b
        blocks = b.sdiv(b.add(b.sub(stop, first), i64(ROWS - 1)), i64(ROWS))
        with self.k.loop(0, blocks, "blk") as blk:
            i0 = b.add(first, b.mul(blk, i64(ROWS)))
            body(i0, smin(b, i64(ROWS), b.sub(stop, i0)))

    def row(self, buf: ir.Value, r: ir.Value, width: int) -> ir.Value:
        """Row r of a ROWS x width block buffer."""
        return self.rows.at(buf, self.b.mul(r, i64(width)))


# ----- scratch layouts ------------------------------------------------------------------------
def _layout(kind: str, node, shapes) -> Scratch:
    """The thread slot of one kernel: packed keys and values, accumulated gradients, and
    block buffers of ROWS rows."""
    g = _geometry(node, shapes)
    dtype = np.dtype(node.dtype)
    S, E, Ev = int(g.S), int(g.E), int(g.Ev)
    s_pad, e_pad, ev_pad = padded(S, dtype), padded(E, dtype), padded(Ev, dtype)
    nb = int(np.prod([int(d) for d in g.batch], dtype=np.int64))
    layout = Scratch(dtype)
    rows = {"q": e_pad, "do": ev_pad, "s": s_pad, "p": s_pad, "keep": s_pad, "d": 1}
    if kind == "backward":
        layout.slots = slots_for(nb * g.hkv)
        for name, count in (("kt", E * s_pad), ("kp", S * e_pad), ("vt", Ev * s_pad),
                            ("dk", S * e_pad), ("dv", S * ev_pad)):
            layout.add(name, count)
        rows.update(dq=e_pad, pd=s_pad, dp=s_pad, ds=s_pad)
    else:
        units = nb * g.hq
        layout.slots = slots_for(units * row_chunks(int(g.L), units))
        layout.add("kt", E * s_pad)
        if kind == "forward":
            layout.add("vp", S * ev_pad)
            rows.update(o=ev_pad)
        else:
            layout.add("vt", Ev * s_pad)
            rows.update(dp=s_pad, ds=s_pad)
    for name, width in rows.items():
        layout.add(name, ROWS * width)
    return layout


def _work(node, shapes) -> int:
    """Multiply-adds (the serial rule's unit: eight count as one element)."""
    g = _geometry(node, shapes)
    rows = int(np.prod([int(d) for d in g.lead], dtype=np.int64)) * int(g.L)
    return rows * int(g.S) * (int(g.E) + int(g.Ev)) // 8


def _head_bases(a: _Attention, bi: ir.Value, h: ir.Value) -> dict[str, ir.Value]:
    """The element offsets of query head h's rows of batch element bi in q, the mask,
    out and dout, and of its key/value head in k and v."""
    b = a.b
    kv = b.udiv(h, i64(a.g.group))
    bases = {"q": b.add(a.batch_offset(a.q, bi), b.mul(h, i64(a.q.head))),
             "k": b.add(a.batch_offset(a.key, bi), b.mul(kv, i64(a.key.head))),
             "v": b.add(a.batch_offset(a.v, bi), b.mul(kv, i64(a.v.head)))}
    for name in ("mask", "out", "dout"):
        x = getattr(a, name, None)
        if x is not None:
            bases[name] = b.add(a.batch_offset(x, bi), b.mul(h, i64(x.head)))
    return bases


def _load_block(a: _Attention, buf, bases, i0: ir.Value, n: ir.Value,
                with_grad: bool) -> None:
    """Rows i0 .. i0 + n - 1 of q into buf["q"] (and of dout into buf["do"], their
    D = dout . out into buf["d"]); the block's other rows are zeroed, so they add
    nothing to an accumulated gradient (nor carry another head's values)."""
    b, r = a.b, a.rows
    e_pad, ev_pad = padded(a.E, a.dtype), padded(a.Ev, a.dtype)
    with a.k.loop(0, n, "r") as row:
        i = b.add(i0, row)
        a.load_row(a.row(buf["q"], row, e_pad), a.q, b.add(bases["q"], b.mul(i, i64(a.q.row))),
                   a.E)
        if with_grad:
            do_base = b.add(bases["dout"], b.mul(i, i64(a.dout.row)))
            out_base = b.add(bases["out"], b.mul(i, i64(a.out.row)))
            a.load_row(a.row(buf["do"], row, ev_pad), a.dout, do_base, a.Ev)
            r.store(a.row_dot(a.dout, do_base, a.out, out_base, a.Ev), buf["d"], row)
    s_pad = padded(a.S, a.dtype)
    with a.k.loop(n, ROWS, "z") as row:
        for name, width in (("q", e_pad), ("do", ev_pad), ("pd", s_pad), ("p", s_pad),
                            ("ds", s_pad)):
            if name in buf:
                r.fill(a.row(buf[name], row, width), width)


def _block_weights(a: _Attention, buf, bases, i0, n, lead, dropped: str | None) -> None:
    """Each row's weights (buf["p"], dropout factors in buf["keep"]) from its scores in
    buf["s"]; with `dropped`, also the weights times their factors into buf[dropped]."""
    b, r = a.b, a.rows
    s_pad = padded(a.S, a.dtype)
    with a.k.loop(0, n, "r") as row:
        i = b.add(i0, row)
        mask_row = None if a.mask is None else b.add(bases["mask"],
                                                     b.mul(i, i64(a.mask.row)))
        p, keep = a.row(buf["p"], row, s_pad), a.row(buf["keep"], row, s_pad)
        a.weights(a.row(buf["s"], row, s_pad), p, keep, i, lead, mask_row)
        if dropped is not None and a.attrs["dropout"]:
            out = a.row(buf[dropped], row, s_pad)
            with a.k.loop(0, a.S, "c") as c:
                r.store(b.fmul(r.load(p, c), r.load(keep, c)), out, c)


# ----- the kernels ----------------------------------------------------------------------------
@lowering("scaled_dot_product_attention", reads_strided=None, work=_work,
          scratch=lambda node, shapes: _layout("forward", node, shapes).bytes())
def emit_attention(k, node, out, ins, scratch) -> None:
    a = _Attention(k, node, ins, scratch, _layout("forward", node, [x.shape for x in ins]))
    b, r, g = a.b, a.rows, a.g
    L, S, E, Ev = a.L, a.S, a.E, a.Ev
    s_pad, e_pad, ev_pad = padded(S, a.dtype), padded(E, a.dtype), padded(Ev, a.dtype)
    chunks = row_chunks(L, a.nb * g.hq)
    per_chunk = -(-L // chunks) if L else 0

    def unit_body(unit, buf):
        ch = b.urem(unit, i64(chunks))
        lead = b.udiv(unit, i64(chunks))  # bi * hq + h
        h, bi = b.urem(lead, i64(g.hq)), b.udiv(lead, i64(g.hq))
        bases = _head_bases(a, bi, h)
        a.pack_keys(buf["kt"], bases["k"], transposed=True)
        a.pack_values(buf["vp"], bases["v"], transposed=False)
        first = b.mul(ch, i64(per_chunk))

        def block(i0, n):
            _load_block(a, buf, bases, i0, n, with_grad=False)
            r.rows_times(buf["q"], e_pad, E, buf["kt"], s_pad, s_pad, buf["s"], s_pad)
            _block_weights(a, buf, bases, i0, n, lead, dropped="p")
            r.rows_times(buf["p"], s_pad, S, buf["vp"], ev_pad, ev_pad, buf["o"], ev_pad)
            with a.k.loop(0, n, "r") as row:
                at = b.mul(b.add(b.mul(lead, i64(L)), b.add(i0, row)), i64(Ev))
                r.copy_out(out.ptr, at, a.row(buf["o"], row, ev_pad), Ev)

        a.each_block(first, smin(b, b.add(first, i64(per_chunk)), i64(L)), block)

    a.each_unit(a.nb * g.hq * chunks, unit_body)


@lowering("attention_backward", reads_strided=None, work=lambda n, s: 2 * _work(n, s),
          outputs=lambda node: [node.dtype] * 3,
          scratch=lambda node, shapes: _layout("backward", node, shapes).bytes())
def emit_attention_backward(k, node, outs, ins, scratch) -> None:
    dq, dk, dv = outs
    a = _Attention(k, node, ins, scratch, _layout("backward", node, [x.shape for x in ins]))
    b, r, g = a.b, a.rows, a.g
    L, S, E, Ev = a.L, a.S, a.E, a.Ev
    s_pad, e_pad, ev_pad = padded(S, a.dtype), padded(E, a.dtype), padded(Ev, a.dtype)
    scale = a.attrs["scale"]

    def unit_body(unit, buf):
        kv, bi = b.urem(unit, i64(g.hkv)), b.udiv(unit, i64(g.hkv))
        for name, count in (("dk", S * e_pad), ("dv", S * ev_pad), ("q", ROWS * e_pad),
                            ("do", ROWS * ev_pad)):
            r.fill(buf[name], count)
        with a.k.loop(0, g.group, "j") as j:
            h = b.add(b.mul(kv, i64(g.group)), j)
            lead = b.add(b.mul(bi, i64(g.hq)), h)
            bases = _head_bases(a, bi, h)
            with a.k.when(b.icmp_signed("==", j, i64(0))):
                a.pack_keys(buf["kt"], bases["k"], transposed=True)
                a.pack_keys(buf["kp"], bases["k"], transposed=False)
                a.pack_values(buf["vt"], bases["v"], transposed=True)

            def block(i0, n):
                _load_block(a, buf, bases, i0, n, with_grad=True)
                r.rows_times(buf["q"], e_pad, E, buf["kt"], s_pad, s_pad, buf["s"], s_pad)
                dropped = "pd" if a.attrs["dropout"] else "p"
                _block_weights(a, buf, bases, i0, n, lead, dropped=dropped)
                r.rank_update(buf["dv"], ev_pad, S, buf[dropped], s_pad, buf["do"], ev_pad,
                              ev_pad)
                r.rows_times(buf["do"], ev_pad, Ev, buf["vt"], s_pad, s_pad, buf["dp"], s_pad)
                with a.k.loop(0, n, "r") as row:
                    a.scores_grad(*(a.row(buf[x], row, s_pad) for x in ("p", "dp", "keep",
                                                                         "ds")),
                                  r.load(buf["d"], row), scale)
                r.rows_times(buf["ds"], s_pad, S, buf["kp"], e_pad, e_pad, buf["dq"], e_pad)
                with a.k.loop(0, n, "r") as row:
                    at = b.mul(b.add(b.mul(lead, i64(L)), b.add(i0, row)), i64(E))
                    r.copy_out(dq.ptr, at, a.row(buf["dq"], row, e_pad), E)
                r.rank_update(buf["dk"], e_pad, S, buf["ds"], s_pad, buf["q"], e_pad, e_pad)

            a.each_block(i64(0), i64(L), block)
        head = b.add(b.mul(bi, i64(g.hkv)), kv)
        with a.k.loop(0, S, "c") as c:
            row = b.add(b.mul(head, i64(S)), c)
            r.copy_out(dk.ptr, b.mul(row, i64(E)), r.at(buf["dk"], b.mul(c, i64(e_pad))), E)
            r.copy_out(dv.ptr, b.mul(row, i64(Ev)), r.at(buf["dv"], b.mul(c, i64(ev_pad))),
                       Ev)

    a.each_unit(a.nb * g.hkv, unit_body)


@lowering("attention_mask_grad", reads_strided=None, work=_work,
          scratch=lambda node, shapes: _layout("mask_grad", node, shapes).bytes())
def emit_attention_mask_grad(k, node, out, ins, scratch) -> None:
    a = _Attention(k, node, ins, scratch, _layout("mask_grad", node, [x.shape for x in ins]))
    b, r, g = a.b, a.rows, a.g
    L, S, E, Ev = a.L, a.S, a.E, a.Ev
    s_pad, e_pad, ev_pad = padded(S, a.dtype), padded(E, a.dtype), padded(Ev, a.dtype)
    chunks = row_chunks(L, a.nb * g.hq)
    per_chunk = -(-L // chunks) if L else 0

    def unit_body(unit, buf):
        ch = b.urem(unit, i64(chunks))
        lead = b.udiv(unit, i64(chunks))
        h, bi = b.urem(lead, i64(g.hq)), b.udiv(lead, i64(g.hq))
        bases = _head_bases(a, bi, h)
        a.pack_keys(buf["kt"], bases["k"], transposed=True)
        a.pack_values(buf["vt"], bases["v"], transposed=True)
        first = b.mul(ch, i64(per_chunk))

        def block(i0, n):
            _load_block(a, buf, bases, i0, n, with_grad=True)
            r.rows_times(buf["q"], e_pad, E, buf["kt"], s_pad, s_pad, buf["s"], s_pad)
            _block_weights(a, buf, bases, i0, n, lead, dropped=None)
            r.rows_times(buf["do"], ev_pad, Ev, buf["vt"], s_pad, s_pad, buf["dp"], s_pad)
            with a.k.loop(0, n, "r") as row:
                ds = a.row(buf["ds"], row, s_pad)
                a.scores_grad(a.row(buf["p"], row, s_pad), a.row(buf["dp"], row, s_pad),
                              a.row(buf["keep"], row, s_pad), ds, r.load(buf["d"], row), 1.0)
                at = b.mul(b.add(b.mul(lead, i64(L)), b.add(i0, row)), i64(S))
                r.copy_out(out.ptr, at, ds, S)

        a.each_block(first, smin(b, b.add(first, i64(per_chunk)), i64(L)), block)

    a.each_unit(a.nb * g.hq * chunks, unit_body)
