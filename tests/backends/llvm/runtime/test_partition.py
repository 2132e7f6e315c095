"""Module partitioning (runtime/partition.py): library modules per helper the program calls."""

from llvmlite import ir

from graphc.backends.llvm.runtime import partition

VOID = ir.FunctionType(ir.VoidType(), [])


def _module(kernels: dict[str, str]) -> str:
    """IR text (as llvmlite prints it) of kernels k*_* each calling one of two drivers,
    both of which call one micro-kernel."""
    module = ir.Module()
    micro = _function(module, "gc_micro", internal=True)
    ir.IRBuilder(micro.append_basic_block()).ret_void()
    drivers = {}
    for name in ("gc_driver_a", "gc_driver_b"):
        driver = drivers[name] = _function(module, name, internal=True)
        b = ir.IRBuilder(driver.append_basic_block())
        b.call(micro, [])
        b.ret_void()
    entry = ir.IRBuilder(_function(module, "graphc_entry").append_basic_block())
    for kernel, driver in kernels.items():
        b = ir.IRBuilder(_function(module, kernel, internal=True).append_basic_block())
        b.call(drivers[driver], [])
        b.ret_void()
        entry.call(module.globals[kernel], [])
    entry.ret_void()
    return str(module)


def _function(module: ir.Module, name: str, internal: bool = False) -> ir.Function:
    function = ir.Function(module, VOID, name)
    if internal:
        function.linkage = "internal"
    return function


def _library_of(libraries: list[str], name: str) -> str:
    (found,) = [text for text in libraries if f'define void @"{name}"' in text]
    return found


def test_a_library_does_not_depend_on_the_other_helpers_a_program_uses():
    _, alone = partition.split_shared(_module({"k0_x": "gc_driver_a"}))
    own, both = partition.split_shared(_module({"k0_x": "gc_driver_a", "k1_y": "gc_driver_b"}))
    assert len(alone) == 1 and len(both) == 2
    assert _library_of(alone, "gc_driver_a") == _library_of(both, "gc_driver_a")
    for library in both:  # each has its own internal copy of what its driver calls
        assert 'define internal void @"gc_micro"' in library
    assert 'declare void @"gc_driver_a"' in own and 'declare void @"gc_driver_b"' in own
    assert "gc_micro" not in own
