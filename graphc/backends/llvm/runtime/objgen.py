"""IR text to object code: the O3 pipeline and code generation for a given target, with
nothing but llvmlite imported, so the same code runs in graphc's process (target.py) and
in a compile worker process (parallel.py), which runs this file by path:

    python -I -S objgen.py LLVMLITE_DIR TRIPLE CPU FEATURES

A worker reads requests from stdin (a little-endian u64 length, then the IR text in
UTF-8) and answers each on stdout (u64 length, the SHA-256 of the object, the object),
until stdin ends. It is handed the parent's target so its objects are the parent's.
"""

from __future__ import annotations

import hashlib
import struct
import sys

if __name__ == "__main__":  # -S leaves site-packages out: find the parent's llvmlite
    sys.path.append(sys.argv[1])

import llvmlite.binding as llvm  # noqa: E402

LENGTH = struct.Struct("<Q")
REPLY = struct.Struct("<Q32s")  # object length, its SHA-256


def initialize() -> None:
    """Register the host target and its assembly printer (idempotent)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


def target_machine(triple: str, cpu: str, features: str,
                   linkable: bool = False) -> llvm.TargetMachine:
    """A fresh target machine at O3 (MCJIT takes ownership of one). Another architecture
    than the host's (code emitted, not run here) needs every LLVM target registered.
    `linkable`: code for a system linker (graphc.export: a relocatable object and a shared
    library), position-independent with the small code model, instead of MCJIT's static
    relocations and large code model (a shared library cannot take those)."""
    if triple.split("-")[0] != llvm.get_process_triple().split("-")[0]:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
    target = llvm.Target.from_triple(triple)
    if linkable:
        return target.create_target_machine(cpu=cpu, features=features, opt=3, reloc="pic",
                                            codemodel="default")
    return target.create_target_machine(cpu=cpu, features=features, opt=3, jit=True)


def emit_object(ir_text: str, triple: str, cpu: str, features: str,
                linkable: bool = False) -> bytes:
    """Parse, verify, optimize (O3, loop and SLP vectorization) and emit object code
    (`linkable`: for a system linker, see target_machine). Every LLVM object is freed on
    return: the module lives in a context of its own (the global one would keep its
    constants and types forever)."""
    with (llvm.create_context() as context, llvm.parse_assembly(ir_text, context) as module,
          target_machine(triple, cpu, features, linkable) as tm, tuning_options() as pto):
        module.verify()
        module.triple = tm.triple
        module.data_layout = str(tm.target_data)
        optimize(module, tm, pto)
        return tm.emit_object(module)


def tuning_options() -> llvm.PipelineTuningOptions:
    """O3 with loop and SLP vectorization and interleaving, without the unroller (it cost
    ~30% of compile time and bought no measured step time: the GEMM is register-blocked by
    hand and the vectorizer interleaves the rest)."""
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pto.loop_interleaving = True
    pto.loop_unrolling = False
    return pto


def optimize(module: llvm.ModuleRef, tm: llvm.TargetMachine,
             pto: llvm.PipelineTuningOptions) -> None:
    """Run the default per-module pipeline of `pto` on `module`, freeing the pass builder
    and pass manager at once (a compile used to keep ~90 KB of them: see _dispose_pm)."""
    builder = llvm.create_pass_builder(tm, pto)
    try:
        manager = builder.getModulePassManager()
        try:
            manager.run(module, builder)
        finally:
            _dispose_pm(manager)
    finally:
        builder.close()


def _dispose_pm(manager: llvm.ModulePassManager) -> None:
    """Free a new-PM module pass manager. In llvmlite 0.50 ModulePassManager's `_dispose`
    resolves to ObjectRef's empty one (ObjectRef precedes NewPassManager in its bases), so
    close() and the garbage collector never free it; call the real disposal, then detach
    (a later llvmlite that fixes the order must not free it twice)."""
    if not manager.closed:
        llvm.ffi.lib.LLVMPY_DisposeNewModulePassManger(manager)
        manager.detach()


def serve(triple: str, cpu: str, features: str) -> None:
    """Answer compile requests on stdin until it ends (a worker's main loop)."""
    initialize()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = requests.read(LENGTH.size)
        if len(head) < LENGTH.size:
            return
        (length,) = LENGTH.unpack(head)
        text = requests.read(length).decode()
        obj = emit_object(text, triple, cpu, features)
        replies.write(REPLY.pack(len(obj), hashlib.sha256(obj).digest()) + obj)
        replies.flush()


if __name__ == "__main__":
    serve(*sys.argv[2:5])
