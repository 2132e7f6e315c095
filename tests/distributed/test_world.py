"""gc.distributed.init without a launcher: a world of one process, whose collectives
return their input, so a script written for several processes runs alone."""

import numpy as np
import pytest

import graphc as gc
from graphc.distributed import world as world_module


@pytest.fixture
def fresh(monkeypatch):
    """init() as in a new process: no world yet, no launcher variables."""
    monkeypatch.setattr(world_module, "_world", None)
    for name in world_module.LAUNCHER_VARIABLES + world_module.SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(world_module.TIMEOUT_VARIABLE, raising=False)


def test_alone_the_world_has_one_process(fresh):
    world = gc.distributed.init()
    assert (world.rank, world.size, world.local_rank, world.local_size) == (0, 1, 0, 1)
    assert world.is_main and world.comm is None
    assert world.timeout == gc.distributed.DEFAULT_TIMEOUT
    assert gc.distributed.init() is world  # one world per process
    assert not gc.distributed.launched_by_mpi()


def test_collectives_of_one_process_return_their_input(fresh):
    world = gc.distributed.init()
    values = np.array([1.5, 2.0])
    out = world.allreduce(values)
    np.testing.assert_array_equal(out, values)
    assert out is not values
    assert world.sum({"loss": 3.0, "n": 2}) == {"loss": 3.0, "n": 2.0}
    assert world.broadcast_object({"a": 1}) == {"a": 1}
    world.broadcast(values)
    world.barrier()
    with pytest.raises(ValueError, match="op must be one of"):
        world.allreduce(values, op="product")
    with pytest.raises(gc.distributed.DistributedError, match="gave up"):
        world.abort("gave up")


def test_timeout_from_init_and_environment(fresh, monkeypatch):
    monkeypatch.setenv(world_module.TIMEOUT_VARIABLE, "12.5")
    assert gc.distributed.init().timeout == 12.5
    assert gc.distributed.init(timeout=3).timeout == 3.0


@pytest.mark.parametrize("value, error", [("soon", "GRAPHC_DIST_TIMEOUT"), ("-1", "> 0"),
                                          ("nan", "> 0")])
def test_a_bad_timeout_is_refused(fresh, monkeypatch, value, error):
    monkeypatch.setenv(world_module.TIMEOUT_VARIABLE, value)
    with pytest.raises(gc.distributed.DistributedError, match=error):
        gc.distributed.init()


def test_bad_timeout_arguments(fresh):
    with pytest.raises(TypeError, match="timeout"):
        gc.distributed.init(timeout="5")
    with pytest.raises(ValueError, match="timeout"):
        gc.distributed.init(timeout=0)


def test_several_processes_without_mpi4py_are_refused(fresh, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(__import__("sys").modules, "mpi4py", None)  # import fails
    with pytest.raises(gc.distributed.DistributedError, match="mpi4py is not installed"):
        gc.distributed.init()


def test_one_process_without_mpi4py_runs_alone(fresh, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    monkeypatch.setitem(__import__("sys").modules, "mpi4py", None)
    assert gc.distributed.init().size == 1
