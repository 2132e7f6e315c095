"""Pooling and resizing layers over (N, C, H, W) batches with PyTorch's arguments: max and
average pooling, their adaptive forms (a fixed output size), and Upsample."""

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
    """The largest value of each window (stride defaults to the kernel size)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False):
        _refuse(type(self).__name__, dilation=(dilation, 1),
                return_indices=(return_indices, False), ceil_mode=(ceil_mode, False))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, training: bool):
        return dsl.max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """The mean of each window (stride defaults to the kernel size); zero padding counts
    in the divisor (PyTorch's count_include_pad=True)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None):
        _refuse(type(self).__name__, ceil_mode=(ceil_mode, False),
                count_include_pad=(count_include_pad, True),
                divisor_override=(divisor_override, None))
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, training: bool):
        return dsl.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)

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
