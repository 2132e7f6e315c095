"""Convolutions: conv2d, fused_conv2d (with an elementwise epilogue) and their gradients.

Small stride-1 float convolutions (forward and input gradient) run the direct kernel
(direct_plan.py states the rule and why, direct_emit.py emits it); stride-1 3 x 3 layers
with enough channels run Winograd's F(4x4, 3x3) (winograd_plan.py, winograd_emit.py).
Other float convolutions are GEMMs on the packed GEMM (graphc/backends/llvm/gemm/),
packing image patches straight from NCHW (im2col.py: implicit im2col, zero padding read
as zeros): forward out[n] (O x HoWo) = w (O x CKK) @ patches(x[n]) (CKK x HoWo); the input
gradient is the forward convolution of g with the flipped, transposed kernel (stride 1,
many input channels), or else columns cols[n] (CKK x HoWo) = w^T @ g[n] summed back into
place (col2im). Integer convolutions run as loops (loops.py): threads split whole output
planes; each output element sums its terms in a fixed (channel, kernel row, kernel
column) order, kernel columns unrolled so the inner loop vectorizes.

Channel groups and dilation: the direct kernel and the GEMMs take both (groups as GEMM
batch items, dilation in the patches' index maps); grouped layers with few output channels
per group (depthwise ones) run the planes kernel (planes.py: any stride, forward and weight
gradient), whose tiles the GEMM would leave mostly empty; Winograd takes plain layers only.

paths.py chooses among them from the shapes; forward.py and grad_input.py hold the
lowerings; the weight gradient has a package of its own (grad_weight/).
"""

CONVOLUTION_IR = 100_000  # bytes of IR a convolution kernel emits, roughly (its ir_bytes)
