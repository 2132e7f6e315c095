"""The benchmark suite: graphc's LLVM backend against its NumPy reference, PyTorch
(eager and torch.compile) and JAX, on the reference workloads, measured in one run.

`python -m benchmarks --help` (or `graphc bench`) runs it. Modules: workloads (the models and
kernels, framework-free), impl_graphc / impl_torch / impl_jax (each workload once per
framework), timing, child (one framework at one thread count, in a subprocess), peak (the
FMA probe), compile_time (the LeNet and Transformer compiles: cold, warm, a new batch
size), memory (peak RSS), table and suite (the driver).
"""
