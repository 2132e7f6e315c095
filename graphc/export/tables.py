"""`NAME_runtime.c`: the runtime (graphc/export/runtime.c, the same for every model) with
the model's tables before it (sizes, dims, inputs, outputs, params, the argument table,
the kernels' error messages, the CPU features to check) and the typed `NAME_run` after
it."""

from __future__ import annotations

from importlib import resources

from graphc.export import cpu
from graphc.export.header import c_string, dim_argument, input_argument, run_signature
from graphc.export.model import Model, Tensor

SLOT_KINDS = {"input": "GC_SLOT_INPUT", "output": "GC_SLOT_OUTPUT", "param": "GC_SLOT_PARAM",
              "constant": "GC_SLOT_CONSTANT"}
REGISTERS = {cpu.EAX: 0, cpu.EBX: 1, cpu.ECX: 2, cpu.EDX: 3}


def runtime_body() -> str:
    """The model-independent part of the runtime, as shipped in the package."""
    return resources.files("graphc.export").joinpath("runtime.c").read_text()


MARK = "/* @GRAPHC_TABLES@ (the model's tables go here) */"


def runtime_source(model: Model) -> str:
    """The whole C source of the model's runtime."""
    body = runtime_body()
    if body.count(MARK) != 1:
        raise RuntimeError("internal error: runtime.c has no single place for the tables")
    return "\n".join([prologue(model), body.replace(MARK, model_tables(model)),
                      typed_run(model)])


def prologue(model: Model) -> str:
    """What comes before the runtime: _GNU_SOURCE (before any include), the names, the
    model's header."""
    n = model.name
    return "\n".join([
        f"/* {n}_runtime.c: the runtime of the graphc export {n!r} (generated; do not edit).",
        " * Built with the system C compiler into the object next to the compiled code. */",
        "",
        "#define _GNU_SOURCE",
        f"#define GC_NAME(x) {n}_##x",
        f"#define GC_CTX {n}_ctx",
        f"#define GC_MODEL_NAME {c_string(n)}",
        f'#include "{n}.h"',
        "",
    ])


def model_tables(model: Model) -> str:
    """The model's sizes and tables, in C."""
    lines = [
        "/* The model's tables (graphc/export/tables.py). */",
        f"#define GC_TARGET_NAME {c_string(model.target.name)}",
        f"#define GC_NUM_DIMS {len(model.dims)}",
        f"#define GC_NUM_INPUTS {len(model.inputs)}",
        f"#define GC_NUM_OUTPUTS {len(model.outputs)}",
        f"#define GC_NUM_PARAMS {len(model.params)}",
        f"#define GC_NUM_SLOTS {len(model.slots)}",
        f"#define GC_NUM_ERRORS {len(model.errors)}",
        f"#define GC_NUM_FEATURES {len(model.requirement.features)}",
        f"#define GC_XCR0 0x{model.requirement.xcr0:x}ull",
        f"#define GC_ARENA_BYTES {model.arena_bytes}LL",
        f"#define GC_WORK {model.work}LL",
        f"#define GC_INITIAL_STEP {model.step}LL",
        f"#define GC_WEIGHTS_BYTES {len(model.weights)}LL",
        f"#define GC_WEIGHTS_EMBEDDED {int(model.embedded)}",
        "static const unsigned char gc_fingerprint[16] = {"
        + ", ".join(str(b) for b in model.fingerprint) + "};",
        "static const struct { const char *name; int64_t value; } gc_dims[] = {"
        + _rows([f"{{{c_string(d)}, {v}LL}}" for d, v, _ in model.dims], "{0, 0}") + "};",
        f"static const gc_tensor gc_inputs[] = {{{_tensors(model.inputs)}}};",
        f"static const gc_tensor gc_outputs[] = {{{_tensors(model.outputs)}}};",
        f"static const gc_tensor gc_params[] = {{{_tensors(model.params)}}};",
        "static const struct { int kind; int index; } gc_slots[] = {"
        + _rows([f"{{{SLOT_KINDS[kind]}, {k}}}" for kind, k in model.slots], "{0, 0}") + "};",
        "static const int64_t gc_constant_offsets[] = {"
        + _rows([f"{offset}LL" for offset, _ in model.constants], "0") + "};",
        "static const struct { int code; const char *format; } gc_errors[] = {"
        + _rows([f"{{{code}, {c_string(text)}}}" for code, text in sorted(model.errors.items())],
                "{0, 0}") + "};",
        "static const struct { const char *name; unsigned leaf, subleaf; int reg, bit; } "
        "gc_features[] = {"
        + _rows([f"{{{c_string(f.name)}, 0x{f.leaf:x}u, {f.subleaf}u, {REGISTERS[f.register]}, "
                 f"{f.bit}}}" for f in model.requirement.features], '{"", 0u, 0u, 0, 0}')
        + "};",
        "",
        "/* In the data object graphc emits beside the code (graphc/export/data.py). */",
        "extern const unsigned char GC_NAME(gc_constants)[];",
    ]
    if model.embedded:
        lines.append("extern const unsigned char GC_NAME(gc_weights)[];")
    return "\n".join(lines) + "\n"


def typed_run(model: Model) -> str:
    """NAME_run: the typed form of NAME_run_array."""
    n = model.name
    dims = ", ".join(dim_argument(m) for _, _, m in model.dims)
    inputs = ", ".join(f"(const void *){input_argument(t)}" for t in model.inputs)
    outputs = ", ".join(f"(void *){t.name}" for t in model.outputs)
    body = [run_signature(model) + " {"]
    if model.dims:
        body.append(f"    const int64_t dims[] = {{{dims}}};")
    if model.inputs:
        body.append(f"    const void *const inputs[] = {{{inputs}}};")
    if model.outputs:
        body.append(f"    void *const outputs[] = {{{outputs}}};")
    body.append(f"    return {n}_run_array(ctx, {'dims' if model.dims else 'NULL'}, "
                f"{'inputs' if model.inputs else 'NULL'}, "
                f"{'outputs' if model.outputs else 'NULL'});")
    body.append("}")
    return "\n".join(body) + "\n"


def _tensors(tensors: list[Tensor]) -> str:
    return _rows([f"{{{c_string(t.name)}, {t.nbytes}LL, {t.offset}LL, {int(t.written)}}}"
                  for t in tensors], "{0, 0, 0, 0}")


def _rows(rows: list[str], empty: str) -> str:
    """Initializer rows, or one placeholder row (C has no empty arrays) that the counts
    keep the runtime from reading."""
    return ", ".join(rows) if rows else empty
