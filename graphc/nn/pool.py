"""Pooling and resizing layers with PyTorch's arguments: max and average pooling over
(N, C, L) and (N, C, H, W), the adaptive 2-D forms (a fixed output size), and Upsample."""

from __future__ import annotations

from graphc import dsl
from graphc.nn.module import Module


def _refuse(layer: str, **options) -> None:
    """PyTorch options graphc's pooling ops do not implement, refused at construction
    (each given as (value, default))."""
    for name, (value, default) in options.items():
        if value != default:
            raise ValueError(f"{layer}: {name}={value!r} is not supported (only "
                             f"{name}={default!r})")


class MaxPool2d(Module):
    """The largest value of each window (stride defaults to the kernel size; padding is
    -inf; dilation spreads the window; ceil_mode rounds the output size up)."""

    dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        _refuse(type(self).__name__, return_indices=(return_indices, False))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def forward(self, x, training: bool):
        pool = dsl.max_pool2d if self.dims == 2 else dsl.max_pool1d
        return pool(x, self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, ceil_mode=self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """MaxPool2d's rule over (N, C, L), with int arguments."""

    dims = 1


class AvgPool2d(Module):
    """The mean of each window (stride defaults to the kernel size): over the window's
    size within the zero-padded input (count_include_pad, the default) or within the
    input alone, or divided by divisor_override when given."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x, training: bool):
        return dsl.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                              ceil_mode=self.ceil_mode,
                              count_include_pad=self.count_include_pad,
                              divisor_override=self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """AvgPool2d's rule over (N, C, L), with int arguments (PyTorch's has no
    divisor_override)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x, training: bool):
        return dsl.avg_pool1d(x, self.kernel_size, stride=self.stride, padding=self.padding,
                              ceil_mode=self.ceil_mode,
                              count_include_pad=self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """The mean over PyTorch's adaptive windows giving an output of `output_size` (an int,
    or (h, w), either None to keep the input's): AdaptiveAvgPool2d(1) is global average
    pooling."""

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, x, training: bool):
        return dsl.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """The largest value of each of PyTorch's adaptive windows giving `output_size`."""

    def __init__(self, output_size, return_indices: bool = False):
        _refuse(type(self).__name__, return_indices=(return_indices, False))
        self.output_size = output_size

    def forward(self, x, training: bool):
        return dsl.adaptive_max_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Upsample(Module):
    """Resize to `size` or by `scale_factor`, as torch.nn.Upsample: mode "nearest",
    "bilinear" (align_corners as PyTorch), ... (what gc.interpolate takes)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor=None):
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x, training: bool):
        options = {}
        if self.align_corners is not None:
            options["align_corners"] = self.align_corners
        if self.recompute_scale_factor is not None:
            options["recompute_scale_factor"] = self.recompute_scale_factor
        return dsl.interpolate(x, size=self.size, scale_factor=self.scale_factor,
                               mode=self.mode, **options)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
