"""Reading MindSpore ``.ckpt`` files without MindSpore.

The format (``mindspore/train/checkpoint.proto``, proto2, unchanged from MindSpore 1.x to 2.10)::

    message Checkpoint {
      message Value {
        required string tag = 1;                         // parameter name, "layer1.0.conv2.bn0.gamma"
        oneof value { TensorProto tensor = 2; MapTensorProto maptensor = 3; }
      }
      repeated Value value = 1;
    }
    message TensorProto {
      repeated int64 dims = 1;
      required string tensor_type = 2;                   // "Float32", "Float16", "Int32", ... or "str"
      required bytes tensor_content = 3;                 // little-endian, C order
    }
    message MapTensorProto { repeated TensorProto tensor = 1; }

What ``mindspore.save_checkpoint`` writes, and how this reader treats it:

* one serialised ``Checkpoint`` holding a single ``Value`` per parameter, the messages simply
  concatenated (which protobuf reads as one ``Checkpoint`` with every value);
* a tensor over 512 MiB is split into consecutive ``Value``\\ s with the same tag and the full
  ``dims``: their contents are joined;
* scalars have no ``dims`` (``dims == [0]`` with one element's bytes is a scalar too); strings
  from ``append_dict`` have ``tensor_type "str"`` and UTF-32 content: kept as text, apart from
  the tensors;
* ``crc_check=True`` appends ``b"crc_num"`` and the CRC32 of everything before it as 10 big-endian
  bytes: checked;
* bytes that parse but that no field of the schema holds (garbage appended that happens to be
  well-formed protobuf), and a value without its tensor: refused as corrupt;
* ``enc_key=...`` encrypts the whole file in blocks starting with the magic ``d8 5e 3a 7f``:
  refused (it needs the key and MindSpore's own crypto).

The message classes are built at run time from a ``descriptor_pb2`` description (no generated
code), so only the ``protobuf`` package (which ``onnx`` depends on) and numpy are needed. Every
problem is an :class:`~infer_kit.errors.InferKitError` of one line naming the file.
"""

from __future__ import annotations

import binascii
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from infer_kit.errors import InferKitError

ENCRYPTED_MAGIC = b"\xd8\x5e\x3a\x7f"
CRC_MARK = b"crc_num"
CRC_TRAILER = len(CRC_MARK) + 10
MAX_NAME = 4096

# tensor_type -> numpy dtype; BFloat16 is read as its raw bits and widened to float32 (exact).
DTYPES: dict[str, np.dtype[Any]] = {
    "Float16": np.dtype("<f2"), "Float32": np.dtype("<f4"), "Float64": np.dtype("<f8"),
    "BFloat16": np.dtype("<u2"), "Int8": np.dtype("i1"), "UInt8": np.dtype("u1"), "Int16": np.dtype("<i2"),
    "UInt16": np.dtype("<u2"), "Int32": np.dtype("<i4"), "UInt32": np.dtype("<u4"), "Int64": np.dtype("<i8"),
    "UInt64": np.dtype("<u8"), "Bool": np.dtype("?"),
}


@dataclass(frozen=True)
class MindSporeCheckpoint:
    """The tensors of a ``.ckpt`` in file order, its text entries, and whether a CRC was checked."""

    path: Path
    tensors: dict[str, np.ndarray]
    text: dict[str, str] = field(default_factory=dict)
    crc_checked: bool = False

    def __len__(self) -> int:
        return len(self.tensors)


def looks_like_mindspore(head: bytes) -> bool:
    """Whether a file's first bytes start the way every MindSpore checkpoint starts.

    ``0a`` (Checkpoint.value), a length, ``0a`` (Value.tag), a length, that many bytes of UTF-8
    name, then ``12`` (a tensor) or ``1a`` (a map tensor); a file that ends inside that first
    name counts too (a checkpoint cut short, refused later with its own message). A torch zip
    starts with ``PK``, a pickle with ``80``, an ONNX model (protobuf too) with ``08``.
    """
    if len(head) < 4 or head[0] != 0x0A:
        return False
    try:
        _, pos = _varint(head, 1)
        if pos >= len(head) or head[pos] != 0x0A:
            return False
        length, pos = _varint(head, pos + 1)
        if not 0 < length <= MAX_NAME:
            return False
        if pos + length >= len(head):  # the file ends inside the first name: a MindSpore file cut short
            head[pos:].decode("utf-8", errors="ignore")
            return True
        head[pos:pos + length].decode("utf-8")
    except (IndexError, UnicodeDecodeError):
        return False
    return head[pos + length] in (0x12, 0x1A)


def is_encrypted(head: bytes) -> bool:
    return head.startswith(ENCRYPTED_MAGIC)


def read_mindspore_checkpoint(path: str | os.PathLike[str]) -> MindSporeCheckpoint:
    """Every tensor of a MindSpore ``.ckpt``; a damaged, truncated or encrypted file is one line of error."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    where = f"MindSpore checkpoint {path}"
    if not path.is_file():
        raise InferKitError(f"checkpoint not found: {path}")
    data = path.read_bytes()
    if not data:
        raise InferKitError(f"{where} is empty (0 bytes)")
    if is_encrypted(data):
        raise InferKitError(f"{where} is encrypted (saved with enc_key)",
                            hint="decrypt it with MindSpore first: load_checkpoint(..., dec_key=...) then "
                                 "save_checkpoint without enc_key")
    if data[:1] != b"\x0a":
        raise InferKitError(f"{path} is not a MindSpore checkpoint (it starts with bytes {data[:8].hex()})",
                            hint="is it a torch file? use --from auto")
    body, crc_checked = _strip_crc(data, where)
    message = _checkpoint_class()()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        detail = str(exc).strip().splitlines()[0].rsplit(": ", 1)[-1][:120] if str(exc).strip() else "DecodeError"
        raise InferKitError(f"{where} is truncated or corrupt (protobuf: {detail.lower()})",
                            hint="copy the file again, or re-save it with mindspore.save_checkpoint") from None
    if _has_unknown_fields(message):  # bytes that parse but belong to no field: garbage appended, or not a .ckpt
        raise InferKitError(f"{where} is corrupt: bytes no MindSpore checkpoint field holds (garbage appended?)",
                            hint="copy the file again, or re-save it with mindspore.save_checkpoint")
    tensors, text = _collect(message.value, where)
    if not tensors:
        raise InferKitError(f"{where} holds no tensors")
    return MindSporeCheckpoint(path, tensors, text, crc_checked)


def _strip_crc(data: bytes, where: str) -> tuple[bytes, bool]:
    if len(data) < CRC_TRAILER or data[-CRC_TRAILER:-10] != CRC_MARK:
        return data, False
    body = data[:-CRC_TRAILER]
    stored, actual = int.from_bytes(data[-10:], "big"), binascii.crc32(body)
    if stored != actual:
        raise InferKitError(f"{where} fails its CRC32 check (stored {stored:#010x}, computed {actual:#010x})",
                            hint="the file is damaged: copy it again")
    return body, True


def _collect(values: Any, where: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Join consecutive slices of one tag, decode each entry."""
    tensors: dict[str, np.ndarray] = {}
    text: dict[str, str] = {}
    values = list(values)
    index = 0
    while index < len(values):
        value = values[index]
        if value.HasField("maptensor"):
            raise InferKitError(f"{where}: entry {value.tag!r} is a map tensor (MapParameter), which image "
                                "classifiers do not have and infer-kit does not read")
        if not value.HasField("tensor"):
            raise InferKitError(f"{where} is truncated or corrupt: entry {value.tag!r} holds no tensor",
                                hint="copy the file again, or re-save it with mindspore.save_checkpoint")
        parts = [value.tensor.tensor_content]
        dims, ttype = list(value.tensor.dims), value.tensor.tensor_type
        index += 1
        while index < len(values) and values[index].tag == value.tag:  # slices of a tensor over 512 MiB
            part = values[index].tensor
            if list(part.dims) != dims or part.tensor_type != ttype:
                raise InferKitError(f"{where}: the slices of {value.tag!r} disagree on shape or type")
            parts.append(part.tensor_content)
            index += 1
        if value.tag in tensors or value.tag in text:
            raise InferKitError(f"{where}: parameter {value.tag!r} appears twice")
        decoded = _decode(value.tag, dims, ttype, b"".join(parts), where)
        if isinstance(decoded, str):
            text[value.tag] = decoded
        else:
            tensors[value.tag] = decoded
    return tensors, text


def _decode(tag: str, dims: list[int], ttype: str, data: bytes, where: str) -> np.ndarray | str:
    if ttype == "str":
        if len(data) % 4:
            raise InferKitError(f"{where}: text entry {tag!r} is not UTF-32 ({len(data)} bytes)")
        return data.decode("utf-32-le").rstrip("\x00")
    dtype = DTYPES.get(ttype)
    if dtype is None:
        raise InferKitError(f"{where}: tensor {tag!r} has type {ttype!r}, which infer-kit does not read",
                            hint=f"known types: {', '.join(DTYPES)}")
    if any(d < 0 for d in dims):
        raise InferKitError(f"{where}: tensor {tag!r} has a negative dimension {dims}")
    shape = tuple(dims)
    if shape == (0,) and len(data) == dtype.itemsize:  # MindSpore writes some scalars as dims [0]
        shape = ()
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if expected != len(data):
        raise InferKitError(f"{where} is truncated or corrupt: tensor {tag!r} {list(shape)} {ttype} has "
                            f"{len(data)} bytes, not {expected}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if ttype == "BFloat16":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _has_unknown_fields(message: Any) -> bool:
    """Whether the checkpoint, a value or a tensor holds fields the schema lacks (what MindSpore never writes)."""
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet  # protobuf >= 4.22

        def count(part: Any) -> int:
            return len(UnknownFieldSet(part))
    except ImportError:  # older protobuf: the method that module replaced
        def count(part: Any) -> int:
            return len(part.UnknownFields())

    return bool(count(message)) or any(count(value) or count(value.tensor) for value in message.value)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


@functools.cache
def _checkpoint_class() -> Any:
    """The ``Checkpoint`` message class, built from a description of the schema above."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field_type = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="infer_kit_mindspore_checkpoint.proto",
                                               package="infer_kit_ms", syntax="proto2")
    tensor = proto.message_type.add(name="TensorProto")
    tensor.field.add(name="dims", number=1, label=field_type.LABEL_REPEATED, type=field_type.TYPE_INT64)
    tensor.field.add(name="tensor_type", number=2, label=field_type.LABEL_REQUIRED, type=field_type.TYPE_STRING)
    tensor.field.add(name="tensor_content", number=3, label=field_type.LABEL_REQUIRED, type=field_type.TYPE_BYTES)
    map_tensor = proto.message_type.add(name="MapTensorProto")
    map_tensor.field.add(name="tensor", number=1, label=field_type.LABEL_REPEATED, type=field_type.TYPE_MESSAGE,
                         type_name=".infer_kit_ms.TensorProto")
    checkpoint = proto.message_type.add(name="Checkpoint")
    checkpoint.field.add(name="value", number=1, label=field_type.LABEL_REPEATED, type=field_type.TYPE_MESSAGE,
                         type_name=".infer_kit_ms.Checkpoint.Value")
    value = checkpoint.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    value.field.add(name="tag", number=1, label=field_type.LABEL_REQUIRED, type=field_type.TYPE_STRING)
    value.field.add(name="tensor", number=2, label=field_type.LABEL_OPTIONAL, type=field_type.TYPE_MESSAGE,
                    type_name=".infer_kit_ms.TensorProto", oneof_index=0)
    value.field.add(name="maptensor", number=3, label=field_type.LABEL_OPTIONAL, type=field_type.TYPE_MESSAGE,
                    type_name=".infer_kit_ms.MapTensorProto", oneof_index=0)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("infer_kit_ms.Checkpoint"))
