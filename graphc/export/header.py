"""The C header of an export, `name.h`: the API (the same functions for every model, named
after it), the status codes, and every input, output, param and dim as constants."""

from __future__ import annotations

from graphc.export.model import Model, Tensor

STATUS = [  # (macro, value, meaning): the codes every function returns
    ("GRAPHC_OK", 0, "success"),
    ("GRAPHC_EARGUMENT", 1, "a bad argument: a NULL context or pointer, an unknown id, a "
                            "size that does not match, buffers that overlap"),
    ("GRAPHC_EDIMS", 2, "a dim differs from the value the export was compiled for"),
    ("GRAPHC_EKERNEL", 3, "a kernel refused a value (an id out of range, a negative "
                          "integer power); nothing was written to the params"),
    ("GRAPHC_EWEIGHTS", 4, "the weights file is missing, damaged or another model's"),
    ("GRAPHC_ECPU", 5, "this CPU lacks a feature the code was compiled for"),
    ("GRAPHC_EMEMORY", 6, "out of memory"),
    ("GRAPHC_ETHREADS", 7, "a worker thread could not be started"),
    ("GRAPHC_EIO", 8, "a file could not be read or written"),
]


def run_signature(model: Model) -> str:
    """`int name_run(name_ctx *ctx, int64_t dim_N, ..., const T *in_x, ..., T *out0, ...)`
    (without the final semicolon)."""
    return (f"int {model.name}_run({model.name}_ctx *ctx"
            + "".join(f", {a}" for a in run_parameters(model)) + ")")


def run_parameters(model: Model) -> list[str]:
    """The parameters of name_run after the context, as C declarations."""
    return ([f"int64_t {dim_argument(m)}" for _, _, m in model.dims]
            + [f"const {t.c_type} *{input_argument(t)}" for t in model.inputs]
            + [f"{t.c_type} *{t.name}" for t in model.outputs])


def dim_argument(macro: str) -> str:
    return f"dim_{macro.lower()}"


def input_argument(tensor: Tensor) -> str:
    return f"in_{tensor.macro.lower()}"


def header(model: Model) -> str:
    """The text of name.h."""
    n, P = model.name, model.prefix
    guard = f"GRAPHC_EXPORT_{P}_H"
    fixed = ", ".join(f"{name}={value}" for name, value, _ in model.dims)
    lines = [
        f"/* {n}.h: the C API of a function exported by graphc {model.graphc_version}",
        " * (generated; do not edit). Link with " + f"{n}.o -lm -lpthread, or with -l{n}.",
        f" * Code for target {model.target.name} (cpu {model.target.cpu}); {n}_create checks",
        " * that this CPU has the features it uses.",
        (f" * Shapes are fixed at export ({fixed}): {n}_run takes each dim and refuses any other"
         " value." if model.dims else " * Shapes are static."),
        (f" * A training step: {n}_run updates the params held by the context." if
         model.training else f" * Inference: {n}_run does not change the params."),
        " * Calls of any context of this model take turns (a process-wide lock: the compiled",
        " * code's barrier and error slot are shared); each context has its own params and",
        " * memory. Inputs and outputs are C-order arrays; inputs are not written.",
        " */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        "/* Status codes (the same in every export). */",
        "#ifndef GRAPHC_EXPORT_STATUS",
        "#define GRAPHC_EXPORT_STATUS",
    ]
    lines += [f"#define {macro} {value} /* {meaning} */" for macro, value, meaning in STATUS]
    lines += ["#endif", ""]
    req = model.requirement
    lines += [
        f"#define {P}_GRAPHC_VERSION {c_string(model.graphc_version)}",
        f"#define {P}_TARGET {c_string(model.target.name)}",
        f"#define {P}_TRIPLE {c_string(model.target.triple)}",
        f"#define {P}_CPU {c_string(model.target.cpu)}",
        f"#define {P}_CPU_FEATURES {c_string(','.join(req.names))} /* checked by "
        f"{n}_create */",
        f"#define {P}_TRAINING {int(model.training)} /* 1: {n}_run updates the params */",
        f"#define {P}_INITIAL_STEP {model.step}LL /* the call count a new context starts "
        "from (random ops) */",
        f"#define {P}_ARENA_BYTES {model.arena_bytes}LL",
        f"#define {P}_WEIGHTS_BYTES {len(model.weights)}LL /* {n}.weights.bin */",
        f"#define {P}_WEIGHTS_EMBEDDED {int(model.embedded)} /* 1: {n}_create(NULL, ...) uses "
        "the weights in the object */",
        "",
        f"#define {P}_NUM_DIMS {len(model.dims)}",
    ]
    for k, (name, value, macro) in enumerate(model.dims):
        lines += [f"#define {P}_DIM_{k}_NAME {c_string(name)}",
                  f"#define {P}_DIM_{k} {value}LL",
                  f"#define {P}_DIM_{macro} {value}LL"]
    lines.append("")
    for kind, tensors in (("INPUT", model.inputs), ("OUTPUT", model.outputs),
                          ("PARAM", model.params)):
        lines.append(f"#define {P}_NUM_{kind}S {len(tensors)}")
        for k, t in enumerate(tensors):
            lines += _tensor_macros(f"{P}_{kind}_{k}", t, kind == "PARAM")
            if kind != "OUTPUT":
                lines.append(f"#define {P}_{kind}_{t.macro} {k} /* the id of "
                             f"'{_comment(t.name)}' */")
        lines.append("")
    lines += [
        f"typedef struct {n}_ctx {n}_ctx;",
        "",
        "/* A context: the params (read from weights_path, or from the weights embedded in",
        f" * the object when it is NULL and {P}_WEIGHTS_EMBEDDED), memory for the run and",
        " * threads - 1 worker threads (threads <= 0: every CPU this process may use when the",
        " * function is big enough to gain, else 1; at most the CPUs it may use). NULL on",
        f" * failure: {n}_last_error(NULL) says why (an unknown CPU feature, a damaged file). */",
        f"{n}_ctx *{n}_create(const char *weights_path, int threads);",
        "",
        "/* Run the function once: dims (each must equal the exported value), then one",
        " * pointer per input, then one per output (written). Returns GRAPHC_OK or a code;",
        f" * {n}_last_error(ctx) says what was wrong. */",
        run_signature(model) + ";",
        "",
        "/* The same with arrays: dims[NUM_DIMS] (may be NULL without dims), inputs[NUM_INPUTS],",
        " * outputs[NUM_OUTPUTS]. */",
        f"int {n}_run_array({n}_ctx *ctx, const int64_t *dims, const void *const *inputs,",
        "                   void *const *outputs);",
        "",
        "/* The message of the last failure of ctx (\"\" if none); with NULL, of the last",
        f" * {n}_create or call without a context on this thread. */",
        f"const char *{n}_last_error(const {n}_ctx *ctx);",
        "",
        f"void {n}_destroy({n}_ctx *ctx); /* NULL is fine */",
        "",
        f"int {n}_threads(const {n}_ctx *ctx); /* the threads a run uses */",
        f"int64_t {n}_step(const {n}_ctx *ctx); /* the call count (random ops draw from it) */",
        f"int {n}_set_step({n}_ctx *ctx, int64_t step);",
        "",
        f"/* Params, by id (0 .. {P}_NUM_PARAMS - 1; {n}_param_id gives it by name, -1 if",
        " * none). get/set copy exactly param_bytes(id) bytes; param_data is the context's own",
        " * copy (valid until destroy; do not use it while a run is going on). */",
        f"int {n}_param_id(const char *name);",
        f"const char *{n}_param_name(int id); /* NULL for a bad id */",
        f"int64_t {n}_param_bytes(int id); /* -1 for a bad id */",
        f"void *{n}_param_data({n}_ctx *ctx, int id); /* NULL for a bad id */",
        f"int {n}_get_param({n}_ctx *ctx, int id, void *dst, size_t nbytes);",
        f"int {n}_set_param({n}_ctx *ctx, int id, const void *src, size_t nbytes);",
        "",
        f"/* Write the context's params as a weights file ({n}.weights.bin's format; the file",
        " * is replaced atomically). */",
        f"int {n}_save_weights({n}_ctx *ctx, const char *path);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def _tensor_macros(stem: str, t: Tensor, param: bool) -> list[str]:
    shape = ", ".join(str(d) for d in t.shape)
    lines = [
        f"#define {stem}_NAME {c_string(t.name)}",
        f"#define {stem}_DTYPE {c_string(t.dtype.name)}",
        f"#define {stem}_CTYPE {t.c_type}",
        f"#define {stem}_RANK {len(t.shape)}",
        f"#define {stem}_SHAPE {{{shape}}}" if t.shape else f"#define {stem}_SHAPE {{1}} "
        "/* rank 0: a scalar */",
        f"#define {stem}_SIZE {t.size}LL /* elements */",
        f"#define {stem}_BYTES {t.nbytes}LL",
    ]
    if param:
        lines += [f"#define {stem}_OFFSET {t.offset}LL /* in the weights file */",
                  f"#define {stem}_WRITTEN {int(t.written)} /* 1: a run updates it */"]
    return lines


def _comment(text: str) -> str:
    return text.replace("*/", "* /")


def c_string(text: str) -> str:
    """A C string literal of `text` (UTF-8; anything not printable ASCII as octal)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127 and char != "?":  # ? : no trigraphs
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'

