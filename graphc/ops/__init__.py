"""Every op, one module per family; importing this package registers them all and puts
Python's operators on graph values.

Each module holds its ops' whole story: builder, shape and dtype rule, NumPy reference
and gradient; its `__all__` names the builders of the public API (graphc/dsl.py gathers
them). The modules build on each other in this order (each imports only earlier ones):
leaf, shape, reduction, scalar (the scalar-expression language), elementwise, linalg,
indexing, random, conv, pool, fused, fused_group, fused_reduce, epilogue, composite; a
gradient rule that needs an op of a later module builds it by name (`Node.make("sum",
...)`) or with an operator. A new module is found by this package's import of every
module in it; ops that declare an epilogue get their epilogue op when all are loaded.
"""

import importlib
import pkgutil

from graphc.ir.op import Op, all_ops, get_op  # noqa: F401
from graphc.ops import epilogue, operators

MODULES = tuple(importlib.import_module(f"{__name__}.{info.name}")
                for info in pkgutil.iter_modules(__path__))

epilogue.register_all()
operators.install()
