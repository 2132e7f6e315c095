"""Short runs of the differential fuzzer (graphc.fuzz): a fixed number of programs from a
new seed each run (printed, and named by a failure), a derandomized run under hypothesis,
and the programs it once failed on, kept as regression tests."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc as gc
from graphc.fuzz import (
    CHAIN_MAX,
    Builder,
    Chooser,
    Config,
    HypothesisChooser,
    compare,
    default_pairs,
    new_seed,
    random_program,
    run,
)

PAIRS = default_pairs()
PROGRAMS = 4  # a few seconds; python -m graphc.fuzz --minutes N explores more


def test_random_programs_from_a_new_seed_agree():
    """GRAPHC_FUZZ_SEED=S reruns the programs of seed S on; a failure names its own seed,
    which `python -m graphc.fuzz --seed S --programs 1` rebuilds."""
    seed = int(os.environ.get("GRAPHC_FUZZ_SEED") or new_seed())
    print(f"graphc.fuzz seed {seed} ({PROGRAMS} programs)")
    count, failures = run(seed, programs=PROGRAMS, pairs=PAIRS, report=lambda text: None)
    assert count == PROGRAMS
    assert not failures, (f"fuzzing from seed {seed} (GRAPHC_FUZZ_SEED={seed} reruns it): "
                          f"{len(failures)} failures, the first:\n{failures[0]}")


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_random_graphs_agree_across_configurations(data):
    program = random_program(HypothesisChooser(data))
    for reference, candidate in PAIRS:
        compare(program, reference, candidate)


# Seeds of `python -m graphc.fuzz` that failed before a fix (the generator is deterministic
# per seed; a change to it changes these programs, which is why the bugs also have direct
# tests): 5 built mean() of a 0-d value whose gradient came out (1,) because scalar
# constants were stored 1-D; 13, 30 and 133 sent fusion into sympy recursion on clip and
# comparisons of Piecewise bodies. With the generator of issue 13: 1027, a conv's input
# gradient for an empty batch (LLVM col2im crashed); 5116, leaky_relu of ints fused into a
# division lost its truncation.
@pytest.mark.parametrize("seed", [5, 13, 30, 133, 1027, 5116])
def test_fuzzer_regressions(seed):
    program = random_program(Chooser(seed))
    for reference, candidate in PAIRS:
        compare(program, reference, candidate)


def test_compare_reports_a_disagreement_with_the_program():
    x = gc.input("x", (3,), "float64")
    program = random_program(Chooser(0))
    program.inputs, program.arrays, program.updates = [x], [np.ones(3)], {}
    program.outputs = [gc.random_uniform((3,), seed=1, dtype="float64") + x]

    class Shifted(Config):
        def compile(self, prog):
            fn = super().compile(prog)
            fn.step = 5  # a different dropout/random stream: results must differ
            return fn

    with pytest.raises(AssertionError, match="differs between numpy"):
        compare(program, Config("numpy"), Shifted("numpy"))


def test_the_fuzzer_compares_llvm_when_it_is_available():
    backends = {c.backend for pair in PAIRS for c in pair}
    threads = {c.threads for pair in PAIRS for c in pair if c.backend == "llvm"}
    assert "llvm" in backends and threads == {1, 2}


def test_a_failure_names_the_seed_that_rebuilds_it(monkeypatch):
    def broken(program, reference, candidate):
        raise AssertionError("differs")

    monkeypatch.setattr("graphc.fuzz.compare", broken)
    count, failures = run(41, programs=2, pairs=PAIRS[:1], report=lambda text: None)
    assert count == 2 and [f.split(":")[0] for f in failures] == ["seed 41", "seed 42"]


def test_both_configurations_raising_the_same_error_agree():
    x = gc.input("x", (0, 3), "float32")
    program = random_program(Chooser(0))
    program.inputs, program.arrays, program.updates = [x], [np.zeros((0, 3), np.float32)], {}
    program.outputs = [gc.max(x, axis=0)]
    for reference, candidate in PAIRS:
        compare(program, reference, candidate)
    program.outputs = [gc.sum(x, axis=0)]

    class Failing(Config):
        def compile(self, prog):
            raise ValueError("something else")

    with pytest.raises(AssertionError, match="ValueError: something else"):
        compare(program, Config("numpy"), Failing("numpy"))


def test_the_generator_makes_every_kind_of_program():
    """Over 300 seeds: each dtype, zero-size dims, empty batches, long chains, powers of
    zero and negative bases; so a generator change cannot drop one silently."""
    seen = {"dtypes": set(), "zero_size": 0, "empty_batch": 0, "chain": 0, "pow_base": 0}
    longest = 0
    for seed in range(300):
        chooser = Chooser(seed)
        program = random_program(chooser)
        text = "\n".join(program.description)
        seen["dtypes"].add(text.split("\n")[0].split()[1].rstrip(","))
        seen["zero_size"] += any(0 in a.shape for a in program.arrays)
        seen["empty_batch"] += program.arrays[0].ndim > 0 and program.arrays[0].shape[0] == 0
        seen["chain"] += "chain(" in text
        seen["pow_base"] += any(line.startswith("v") and ("pow" in line or "**" in line)
                                for line in text.split("\n")) and "near_zero" in text
        for line in text.split("\n"):
            if "chain(" in line:  # v3 = chain(v1: tanh_affine, sin, ...) -> shape
                steps = line.split(": ")[1].split(")")[0].split(", ")
                longest = max(longest, len([s for s in steps if s != "+ residual"]))
    assert seen["dtypes"] == {"float32", "float64", "int32", "int64"}
    assert min(seen["zero_size"], seen["empty_batch"], seen["chain"], seen["pow_base"]) >= 15, seen
    assert 20 <= longest <= CHAIN_MAX
    assert Builder(Chooser(0), "int32").floating is False
