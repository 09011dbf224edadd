"""Minimal safetensors writer and reader on numpy (no `safetensors` package needed).

Format: an 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
    {"__metadata__": {str: str}, name: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}}
then the raw little-endian tensor data; data_offsets are relative to the first byte after the
header. The writer is deterministic: "__metadata__" first, tensors in sorted name order (data laid
out in the same order, contiguous), compact JSON, header padded with trailing spaces so the data
section starts at a multiple of 8 bytes.
"""

import json
import struct

import numpy as np

# safetensors dtype name <-> numpy little-endian dtype
_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def _dtype_name(arr):
    for name, npdt in _DTYPES.items():
        if arr.dtype.kind == npdt.kind and arr.dtype.itemsize == npdt.itemsize:
            return name, npdt
    raise TypeError(f"unsupported dtype {arr.dtype}")


def serialize(tensors, metadata=None):
    """Return the bytes of a safetensors file holding `tensors` (dict name -> np.ndarray)."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must be str -> str, got {k!r}: {v!r}")
        header["__metadata__"] = dict(metadata)
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("tensor name '__metadata__' is reserved")
        arr = np.asarray(tensors[name])
        dname, npdt = _dtype_name(arr)
        data = np.ascontiguousarray(arr, dtype=npdt).tobytes()
        header[name] = {"dtype": dname, "shape": [int(s) for s in arr.shape],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)  # 8 + N is then a multiple of 8
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def save_file(tensors, path, metadata=None):
    data = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def deserialize(buf):
    """Parse safetensors bytes; return (tensors dict name -> np.ndarray, metadata dict).

    Validates strictly: header inside the file, known dtypes, offsets matching dtype size x shape,
    tensors contiguous, non-overlapping and covering the whole data section.
    """
    if len(buf) < 8:
        raise ValueError("file shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f"header length {n} runs past the end of the file ({len(buf)} bytes)")
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise ValueError(f"metadata value for {k!r} is not a string")
    data = buf[8 + n:]
    tensors = {}
    spans = []
    for name, info in header.items():
        dname = info["dtype"]
        if dname not in _DTYPES:
            raise ValueError(f"{name}: unsupported dtype {dname}")
        npdt = _DTYPES[dname]
        shape = [int(s) for s in info["shape"]]
        if any(s < 0 for s in shape):
            raise ValueError(f"{name}: negative dimension")
        b, e = (int(x) for x in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= b <= e <= len(data)):
            raise ValueError(f"{name}: data_offsets [{b}, {e}] outside data ({len(data)} bytes)")
        if e - b != count * npdt.itemsize:
            raise ValueError(f"{name}: {e - b} bytes but dtype x shape needs {count * npdt.itemsize}")
        tensors[name] = np.frombuffer(data[b:e], dtype=npdt).reshape(shape).copy()
        spans.append((b, e, name))
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise ValueError(f"{name}: gap or overlap at byte {b} (expected {pos})")
        pos = e
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} trailing bytes after the last tensor")
    return tensors, metadata


def load_file(path):
    with open(path, "rb") as f:
        return deserialize(f.read())
