"""Rewrites a Hugging Face folder's safetensors into other common layouts.

`shard(folder, n)` splits `model.safetensors` into `n` files plus
`model.safetensors.index.json`, as `save_pretrained(max_shard_size=...)`
does; `cast(folder, "F16"|"BF16")` stores every float tensor in half
precision; `pickle_only(folder)` replaces the weights by a
`pytorch_model.bin` that would create a marker file if it were ever
unpickled. The safetensors files are written by hand (8-byte header size,
JSON header, raw little-endian data) so that bfloat16 needs no torch.
"""

import json
import os
import pickle

import numpy as np

_CODES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read(path):
    from kerasft.backbones.t5_checkpoint import read_safetensors

    return read_safetensors(path)


def write(path, tensors, dtype=None):
    """Writes `tensors` (name -> float32/int array); float tensors as
    `dtype` ("F32", "F16" or "BF16"; `None` keeps float32)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        code = "I64" if array.dtype.kind == "i" else (dtype or "F32")
        if code == "BF16":
            data = (array.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
        else:
            data = array.astype(_CODES[code]).tobytes()
        header[name] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for data in chunks:
            f.write(data)


def shard(folder, n=2, dtype=None):
    """Splits `folder/model.safetensors` into `n` shards + index."""
    source = os.path.join(folder, "model.safetensors")
    tensors = read(source)
    os.remove(source)
    names = sorted(tensors)
    weight_map = {}
    for k in range(n):
        fname = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        part = {name: tensors[name] for name in names[k::n]}
        write(os.path.join(folder, fname), part, dtype)
        weight_map.update({name: fname for name in part})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    return folder


def cast(folder, dtype):
    """Rewrites `folder/model.safetensors` with float tensors as `dtype`."""
    path = os.path.join(folder, "model.safetensors")
    write(path, read(path), dtype)
    return folder


class _Marker:
    """Unpickling this creates `path` (as a malicious checkpoint could)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickle_only(folder, marker):
    """Replaces the safetensors weights by a booby-trapped
    `pytorch_model.bin`; unpickling it would create `marker`."""
    for name in os.listdir(folder):
        if name.endswith(".safetensors") or name.endswith(".index.json"):
            os.remove(os.path.join(folder, name))
    with open(os.path.join(folder, "pytorch_model.bin"), "wb") as f:
        pickle.dump(_Marker(marker), f)
    return folder
