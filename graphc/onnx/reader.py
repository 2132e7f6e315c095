"""Reading an ONNX model: the file (or bytes, or a ModelProto), its external data, the
opsets it imports and ONNX's own checker, each failure a clear OnnxError naming the file,
tensor or opset."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnx.shape_inference
import onnx.version_converter
from google.protobuf.message import DecodeError
from onnx import ModelProto, TensorProto

from graphc.onnx.errors import OnnxError

MIN_OPSET = 13
DEFAULT_DOMAINS = ("", "ai.onnx")


def max_opset() -> int:
    """The newest opset of the default domain that the installed onnx package knows."""
    return onnx.defs.onnx_opset_version()


@dataclass
class ReadModel:
    """A model as read: the proto (external data loaded), what messages call it, and the
    opset of its default domain (None when it imports none and uses no default op)."""

    proto: ModelProto
    label: str
    opset: int | None


def read_model(source, base_dir: str | os.PathLike | None = None) -> ReadModel:
    """The model in `source`: a path, bytes, or a ModelProto (a copy of it is read, so the
    caller's proto is left as it was). External data is read relative to the file's folder
    (or `base_dir`, for bytes and protos: the current directory by default)."""
    if isinstance(source, ModelProto):
        proto, label = ModelProto(), "the model"
        proto.CopyFrom(source)
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        proto, label = _parse(bytes(source), "the bytes given"), "the model"
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise OnnxError(f"{label}: no such file" if not path.exists()
                            else f"{label}: not a file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise OnnxError(f"{label}: cannot read it: {exc}") from None
        proto = _parse(data, label)
        folder = Path(base_dir) if base_dir is not None else path.parent
    else:
        raise TypeError(f"onnx.load: expected a path, bytes or an onnx.ModelProto, got "
                        f"{type(source).__name__}")
    load_external_data(proto, folder, label)
    opset = check_opsets(proto, label)
    if opset is not None and opset < MIN_OPSET:
        proto, opset = upgrade(proto, opset, label), MIN_OPSET
    return ReadModel(checked(proto, label), label, opset)


def checked(proto: ModelProto, label: str) -> ModelProto:
    """The model if ONNX's checker accepts it, or else once ONNX's shape inference has
    filled in the types and shapes it leaves out (graph outputs declared without a shape
    or a type, which ONNX Runtime accepts too); else an OnnxError with the checker's
    complaint."""
    try:
        onnx.checker.check_model(proto)
        return proto
    except onnx.checker.ValidationError as exc:
        complaint = exc
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
        onnx.checker.check_model(inferred)
        return inferred
    except Exception:  # noqa: BLE001 (inference raises several kinds): report the first
        text = str(complaint).strip()
        first = text.splitlines()[0] if text else type(complaint).__name__
        raise OnnxError(f"{label}: ONNX's checker refuses the model: {first}") from None


def _parse(data: bytes, label: str) -> ModelProto:
    """A ModelProto from serialized bytes; a file that is not one (or is cut short) is an
    OnnxError."""
    if not data:
        raise OnnxError(f"{label}: the file is empty, not an ONNX model")
    proto = ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxError(f"{label}: not an ONNX model, or a truncated one ({len(data)} bytes): "
                        f"protobuf cannot parse it ({exc})") from None
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise OnnxError(f"{label}: not an ONNX model, or a truncated one ({len(data)} bytes): "
                        "it has no IR version or no graph")
    return proto


def default_opset(proto: ModelProto) -> int | None:
    """The version of the default domain (ai.onnx) the model imports, None if none."""
    versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    return max(versions) if versions else None


def check_opsets(proto: ModelProto, label: str) -> int | None:
    """The model's default-domain opset, refused when newer than max_opset() (an older
    one is upgraded by read_model)."""
    opset = default_opset(proto)
    newest = max_opset()
    if opset is None:
        if any(n.domain in DEFAULT_DOMAINS for n in proto.graph.node):
            raise OnnxError(f"{label}: it uses ONNX ops but imports no opset of the default "
                            "domain (ai.onnx)")
        return None
    if opset > newest:
        raise OnnxError(f"{label}: it imports opset {opset} of ai.onnx, newer than the newest "
                        f"the installed onnx package ({onnx.__version__}) knows, {newest}; "
                        f"graphc.onnx reads opsets {MIN_OPSET} to {newest} (upgrade onnx, or "
                        "export the model for an older opset)")
    return opset


def upgrade(proto: ModelProto, opset: int, label: str) -> ModelProto:
    """A model of an opset older than MIN_OPSET converted to MIN_OPSET by ONNX's own
    version converter (graphc's converters know opsets MIN_OPSET and later)."""
    try:
        return onnx.version_converter.convert_version(proto, MIN_OPSET)
    except Exception as exc:  # noqa: BLE001 (the converter raises RuntimeError and others)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxError(f"{label}: it imports opset {opset} of ai.onnx; graphc.onnx reads "
                        f"opsets {MIN_OPSET} to {max_opset()}, and ONNX's version converter "
                        f"could not upgrade it: {first}") from None


def _external_tensors(proto: ModelProto):
    """Every tensor of the main graph that may hold its data in an external file: the
    initializers and the values of Constant nodes."""
    yield from proto.graph.initializer
    for node in proto.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                yield attribute.t


def load_external_data(proto: ModelProto, folder: Path, label: str) -> None:
    """Read every external tensor's bytes into the proto; a missing file, a path that leaves
    the model's folder or a file too short is an OnnxError naming the tensor."""
    root = folder.resolve()
    for tensor in _external_tensors(proto):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location")
        what = f"{label}: tensor '{tensor.name}'"
        if not location:
            raise OnnxError(f"{what} is stored externally but names no file (location)")
        path = (root / location).resolve()
        if os.path.isabs(location) or not path.is_relative_to(root):
            raise OnnxError(f"{what}: its external data file '{location}' is outside the "
                            f"model's folder {root}; refused")
        if not path.is_file():
            raise OnnxError(f"{what}: its data is in the external file '{location}', which "
                            f"does not exist in {root}")
        try:
            offset = int(info.get("offset", 0))
            length = int(info["length"]) if "length" in info else None
        except ValueError:
            raise OnnxError(f"{what}: bad external data offset/length {info}") from None
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read() if length is None else file.read(length)
        if length is not None and len(data) != length:
            raise OnnxError(f"{what}: its external file '{location}' holds {len(data)} bytes "
                            f"from offset {offset}, {length} expected (truncated?)")
        tensor.raw_data = data
        tensor.data_location = TensorProto.DEFAULT
        del tensor.external_data[:]
