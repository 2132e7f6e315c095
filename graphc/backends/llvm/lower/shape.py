"""Data movement: views (reshape, stop_gradient) share their input's buffer; transpose,
broadcast_to, slice, slice_grad and concat are strided copies, which read an input that is
itself a strided view (schedule.views.View) through its strides. Transposes, slices and
reshapes that only such readers read are views themselves (their `strided_view`)."""

from __future__ import annotations

from graphc.backends.llvm.codegen.irtypes import const, convert
from graphc.backends.llvm.codegen.nest import strided_nest
from graphc.backends.llvm.lower import lowering
from graphc.backends.llvm.schedule.views import ALIGN, View, contiguous_strides, reshape_strides


def same_view(node, base: View, source_shape, shape) -> View:
    """stop_gradient: its input's view."""
    return base


def reshape_view(node, base: View, source_shape, shape) -> View | None:
    strides = reshape_strides(source_shape, base.strides, shape)
    return None if strides is None else View(base.offset, strides)


def transpose_view(node, base: View, source_shape, shape) -> View:
    return View(base.offset, tuple(base.strides[a] for a in node.attrs["axes"]))


def slice_view(node, base: View, source_shape, shape) -> View | None:
    """A slice with a start on every axis and positive steps, whose first element lies on
    an ALIGN-byte boundary (kernels may load vectors aligned from a buffer's start)."""
    offset, strides = base.offset, []
    for (start, _, step), stride in zip(node.attrs["index"], base.strides):
        if start is None or step < 1:
            return None
        offset += start * stride
        strides.append(step * stride)
    if offset * node.dtype.itemsize % ALIGN:
        return None
    return View(offset, tuple(strides))


lowering("reshape", kind="view", strided_view=reshape_view)(None)
lowering("stop_gradient", kind="view", strided_view=same_view)(None)


def strides_of(x) -> list[int]:
    """An operand's element strides: its view's, or those of a contiguous array."""
    return list(x.strides) if x.strides is not None else contiguous_strides(x.shape)


def copy_strided(k, out, src, shape, out_strides, in_strides, out_base=0, in_base=0) -> None:
    """out[out_base + i.out_strides] = src[in_base + i.in_strides] for i over shape."""
    def body(offsets):
        value = k.load(src.ptr, src.dtype, offsets[1])
        k.store(convert(k.b, value, src.dtype, out.dtype), out.ptr, out.dtype, offsets[0])

    strided_nest(k, shape, [list(out_strides), list(in_strides)], body, [out_base, in_base])


@lowering("transpose", reads_strided=(0,), strided_view=transpose_view)
def emit_transpose(k, node, out, ins, scratch) -> None:
    (x,) = ins
    own = strides_of(x)
    copy_strided(k, out, x, out.shape, contiguous_strides(out.shape),
                 [own[a] for a in node.attrs["axes"]])


@lowering("broadcast_to", reads_strided=(0,))
def emit_broadcast_to(k, node, out, ins, scratch) -> None:
    (x,) = ins
    pad = len(out.shape) - len(x.shape)
    strides = [0] * pad + [0 if d == 1 else t for d, t in zip(x.shape, strides_of(x))]
    copy_strided(k, out, x, out.shape, contiguous_strides(out.shape), strides)


def slice_geometry(index, shape, strides=None) -> tuple[int, list[int]]:
    """(offset of the first element, per-axis element steps) of a slice of an array with
    `strides` (default contiguous); symbolic axes are sliced whole, forwards (start None)
    or backwards."""
    own = contiguous_strides(shape) if strides is None else strides
    base, steps = 0, []
    for (start, _, step), dim, stride in zip(index, shape, own):
        if start is None:
            start = 0 if step > 0 else dim - 1
        base += start * stride
        steps.append(step * stride)
    return base, steps


@lowering("slice", reads_strided=(0,), strided_view=slice_view)
def emit_slice(k, node, out, ins, scratch) -> None:
    (x,) = ins
    base, steps = slice_geometry(node.attrs["index"], x.shape, strides_of(x))
    copy_strided(k, out, x, out.shape, contiguous_strides(out.shape), steps, in_base=base)


@lowering("slice_grad", reads_strided=(0,))
def emit_slice_grad(k, node, out, ins, scratch) -> None:
    """Zeros, then (after a barrier) the gradient written into the sliced positions."""
    (g,) = ins
    zero = const(out.dtype, 0)
    strided_nest(k, (out.size,), [[1]],
                 lambda offsets: k.store(zero, out.ptr, out.dtype, offsets[0]))
    k.mc.wait_all(k.b, k.nthreads)
    base, steps = slice_geometry(node.attrs["index"], out.shape)
    copy_strided(k, out, g, g.shape, steps, strides_of(g), out_base=base)


@lowering("concat", reads_strided=None)
def emit_concat(k, node, out, ins, scratch) -> None:
    axis = node.attrs["axis"]
    strides = contiguous_strides(out.shape)
    start = 0
    for x in ins:
        copy_strided(k, out, x, x.shape, strides, strides_of(x),
                     out_base=start * strides[axis])
        start += x.shape[axis]
