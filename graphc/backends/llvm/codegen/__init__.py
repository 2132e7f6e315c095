"""Code generation: turning a plan into LLVM IR. IR types and casts (irtypes), the vector
width and vector helpers (vector), shared integer helpers (arith), one kernel function
and its loops (kernel), broadcasting loop nests (nest), scalar expressions (expr, with
the math functions in mathfuncs), the module under construction (module) and the
assembly of a plan's kernels into one module with its entry (assemble)."""
