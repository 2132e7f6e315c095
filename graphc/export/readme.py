"""The README.txt of an export: what the files are, how to build against them, the API
and its limits, in a few screens of plain text."""

from __future__ import annotations

from graphc.export.header import STATUS, run_signature
from graphc.export.model import Model


def readme(model: Model, files: dict[str, str]) -> str:
    n, P = model.name, model.prefix
    req = model.requirement
    fixed = ", ".join(f"{name}={value}" for name, value, _ in model.dims)
    shapes = "\n".join(
        f"  {kind} {t.name}: {t.dtype.name} {list(t.shape)}"
        for kind, tensors in (("input ", model.inputs), ("output", model.outputs))
        for t in tensors)
    params = "\n".join(f"  {k:3d} {t.name}: {t.dtype.name} {list(t.shape)}"
                       f"{'  (updated by each run)' if t.written else ''}"
                       for k, t in enumerate(model.params))
    listing = "\n".join(f"  {file:24s} {role}" for role, file in files.items())
    codes = "\n".join(f"  {value} {macro}: {meaning}" for macro, value, meaning in STATUS)
    unchecked = (f"\nNot checked (no CPUID bit known to graphc): {', '.join(req.unchecked)}."
                 if req.unchecked else "")
    shapes_rule = (f"fixed at export: {fixed}; {n}_run takes each dim and refuses any other\n"
                   f"value (GRAPHC_EDIMS). Export again with gc.export(..., dims=...) for "
                   "other shapes." if model.dims else "static.")
    embedded = (f"The weights are also embedded in the object: {n}_create(NULL, threads) "
                "uses them." if model.embedded else
                f"{n}_create(NULL, ...) fails: the weights are not embedded (export with\n"
                "  embed_weights=True for that).")
    title = f"{n}: a function exported by graphc {model.graphc_version} as a C library"
    return f"""{title}
{'=' * len(title)}

{"A training step: each run updates the params held by the context." if model.training
 else "Inference: runs do not change the params."}
No Python is needed to run it; building a program against it needs a C compiler.

Files
{listing}

Build
  cc -O2 main.c {n}.o -lm -lpthread -o main          # static: the object
  cc -O2 main.c -L. -l{n} -Wl,-rpath,'$ORIGIN' -o main  # or the shared library

Use
  #include "{n}.h"
  {n}_ctx *ctx = {n}_create("{n}.weights.bin", 0);   /* 0 threads: automatic */
  if (!ctx) {{ fprintf(stderr, "%s\\n", {n}_last_error(NULL)); return 1; }}
  int status = {n}_run(ctx, ...);                      /* 0 = GRAPHC_OK */
  if (status) fprintf(stderr, "%s\\n", {n}_last_error(ctx));
  {n}_destroy(ctx);

  {run_signature(model)};
{shapes}

Shapes are {shapes_rule}
Arrays are C order (row-major), in the dtype the header names ({P}_INPUT_k_CTYPE).

Params (ids for {n}_get_param / {n}_set_param / {n}_param_data; {n}_param_id(name)):
{params}

Weights
  {files['weights']}: {len(model.weights)} bytes, little-endian: a 64-byte header (magic
  "GCWEIGHT", u32 version 1, u32 param count, u64 file size, a 16-byte fingerprint of the
  params' names, dtypes and shapes), then each param at the offset {P}_PARAM_k_OFFSET
  (64-byte aligned), C order. {n}_save_weights writes the same format (a C program can
  save what it trained); graphc.export.read_weights reads it into NumPy arrays.
  {embedded}

Target
  {model.target.name} (triple {model.target.triple}, cpu {model.target.cpu}).
  {n}_create checks this CPU for: {', '.join(req.names) or 'nothing (no x86 features to check)'}
  and fails with GRAPHC_ECPU and a message on a CPU without one of them.{unchecked}

Threads and concurrency
  {n}_create(path, threads) starts threads - 1 worker threads that run each call with the
  caller (threads <= 0: every CPU the process may use if the function is big enough to
  gain, else 1; never more than those CPUs). Calls of all contexts of this model take turns
  (the compiled code's barrier and error slot are process-wide); each context holds its
  own params and memory. Results are the same bits whatever the thread count.
  Each run passes the context's call count (starting at {model.step}, {n}_step/{n}_set_step)
  to random ops such as dropout, as the Python call does.

Status codes
{codes}
"""
