"""The weights file format (no C compiler needed): layout, round trip, and what
read_weights refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphc.export import read_weights, weights

PARAMS = [("conv.weight", np.arange(24, dtype=np.float32).reshape(2, 3, 4)),
          ("count", np.array(7, np.int64)), ("mask", np.array([True, False, True])),
          ("bias", np.linspace(0, 1, 5))]


def _manifest(params=PARAMS, name="m") -> dict:
    entries, total = weights.layout([(n, a.dtype, a.shape) for n, a in params])
    return {"name": name, "weights": {"file": "m.weights.bin", "bytes": total},
            "params": [{"name": e.name, "dtype": e.dtype.name, "shape": list(e.shape),
                        "offset": e.offset} for e in entries]}


def test_layout_aligns_every_param_after_a_64_byte_header():
    entries, total = weights.layout([(n, a.dtype, a.shape) for n, a in PARAMS])
    assert [e.offset for e in entries] == [64, 192, 256, 320]
    assert [e.nbytes for e in entries] == [96, 8, 3, 40]
    assert total == 360


def test_round_trip_is_exact_and_little_endian(tmp_path):
    path = weights.write(tmp_path / "m.weights.bin", PARAMS)
    data = path.read_bytes()
    assert data[:8] == b"GCWEIGHT" and int.from_bytes(data[8:12], "little") == 1
    assert int.from_bytes(data[16:24], "little") == len(data) == 360
    assert data[192:200] == (7).to_bytes(8, "little")
    manifest_path = tmp_path / "m.json"
    manifest_path.write_text(json.dumps(_manifest()))
    back = read_weights(manifest_path)
    assert list(back) == [n for n, _ in PARAMS]
    for name, array in PARAMS:
        assert back[name].dtype == array.dtype and np.array_equal(back[name], array)
    assert not (tmp_path / "m.weights.bin.tmp").exists()


def test_read_weights_refuses_other_files(tmp_path):
    path = weights.write(tmp_path / "w.bin", PARAMS)
    with pytest.raises(ValueError, match="the weights of another model"):
        read_weights(_manifest(PARAMS[:3]), path)
    renamed = [("other", PARAMS[0][1])] + PARAMS[1:]
    with pytest.raises(ValueError, match="the weights of another model"):
        read_weights(_manifest(renamed), path)
    short = tmp_path / "short.bin"
    short.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="359 bytes, the header says 360"):
        read_weights(_manifest(), short)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"x" * 100)
    with pytest.raises(ValueError, match="not a graphc weights file"):
        read_weights(_manifest(), junk)
    with pytest.raises(ValueError, match="too short"):
        read_weights(_manifest(), _tiny(tmp_path))
    with pytest.raises(TypeError, match="pass the weights file's path"):
        read_weights(_manifest())


def _tiny(tmp_path):
    path = tmp_path / "tiny.bin"
    path.write_bytes(b"GC")
    return path
