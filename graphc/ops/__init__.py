"""Every op, one module per family; importing this package registers them all."""

from graphc.ops import (  # noqa: F401
    conv,
    elementwise,
    epilogue,
    fused,
    fused_group,
    fused_reduce,
    indexing,
    leaf,
    linalg,
    pool,
    random,
    reduction,
    shape,
)
from graphc.ops.registry import Op, all_ops, get_op  # noqa: F401
