"""einsum against PyTorch: contractions, batches that broadcast, ellipses, diagonals and
traces, implicit outputs, several operands; and malformed equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphc as gc
from tests.ops.oracle import agree_with_torch

RNG = np.random.default_rng(2)


@pytest.mark.parametrize("equation,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(1, 3, 4), (4, 4, 5)]),  # a batch label of size 1 broadcasts
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),  # attention scores
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),  # ellipses broadcast, implicit output
    ("ijk,jil->kl", [(2, 3, 4), (3, 2, 5)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),  # nothing contracted: an elementwise product
    ("ij,kj->ikj", [(2, 3), (4, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(4, 4)]),
    ("iij->ji", [(3, 3, 2)]),
    ("iii->i", [(3, 3, 3)]),
    ("ii,j->j", [(3, 3), (4,)]),
    ("ba", [(2, 3)]),
    ("...i->...", [(2, 3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
])
def test_einsum_follows_torch(equation, shapes):
    arrays = [RNG.normal(size=s) for s in shapes]
    agree_with_torch(lambda *v: gc.einsum(equation, *v),
                     lambda *v: torch.einsum(equation, *v), arrays, backends=("numpy",))


def test_einsum_compiles_natively():
    arrays = [RNG.normal(size=s).astype(np.float32) for s in [(2, 3, 4), (2, 4, 5), (3, 3)]]
    agree_with_torch(lambda a, b, c: gc.einsum("bij,bjk->bik", a, b)
                     + gc.einsum("ii->i", c)[:, None],
                     lambda a, b, c: torch.einsum("bij,bjk->bik", a, b)
                     + torch.einsum("ii->i", c)[:, None], arrays, backends=("llvm",))


@pytest.mark.parametrize("equation,shapes,message", [
    ("ij,jk", [(3, 4), (5, 6)], "label 'j' has sizes 4 and 5"),
    ("ij->k", [(2, 3)], r"output labels \['k'\] appear in no operand"),
    ("ij", [(2, 3, 4)], r"subscripts 'ij' do not fit an operand of shape \(2, 3, 4\)"),
    ("i,j", [(3,)], "names 2 operands, got 1"),
    ("ij->ii", [(2, 2)], "output subscripts 'ii' repeat a label"),
    ("i1", [(2, 2)], "bad subscripts 'i1'"),
    ("ij->i->j", [(2, 2)], "has more than one '->'"),
    ("ii", [(2, 3)], "label 'i' repeats over axes of sizes"),
])
def test_malformed_equations_are_refused(equation, shapes, message):
    operands = [gc.input(f"x{k}", s) for k, s in enumerate(shapes)]
    with pytest.raises(gc.GraphError, match="einsum: .*" + message + r".*test_einsum.py"):
        gc.einsum(equation, *operands)
