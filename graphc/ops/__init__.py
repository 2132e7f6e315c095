"""Every op, one module per family; importing this package registers them all and puts
Python's operators on graph values.

Each module holds its ops' whole story: builder, shape and dtype rule, NumPy reference
and gradient. The modules build on each other in this order (each imports only earlier
ones): leaf, shape, reduction, scalar (the scalar-expression language), elementwise,
linalg, indexing, random, conv, pool, fused, fused_group, fused_reduce, epilogue,
composite. A gradient rule that needs an op of a later module builds it by name
(`Node.make("sum", ...)`) or with an operator.
"""

from graphc.ir.op import Op, all_ops, get_op  # noqa: F401
from graphc.ops import (  # noqa: F401
    composite,
    conv,
    elementwise,
    epilogue,
    fused,
    fused_group,
    fused_reduce,
    indexing,
    leaf,
    linalg,
    operators,
    pool,
    random,
    reduction,
    scalar,
    shape,
)

epilogue.register_all()
operators.install()
