"""safetensors writing with a canonical header, shared by the converter and the fixture generator.

The reference `safetensors` writer orders metadata keys arbitrarily, so equal contents can give
different bytes; here keys are sorted, the JSON has no spaces and is padded to 8 bytes, tensors are laid
out in name order, and the file is written to a temporary name and renamed, so it appears complete or
not at all.
"""
import json
import os
from pathlib import Path

import torch

DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.float16: ("F16", "<f2"),
          torch.int64: ("I64", "<i8"), torch.int32: ("I32", "<i4")}


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes(), "BF16"
    name, np_dtype = DTYPES[t.dtype]
    return t.contiguous().numpy().astype(np_dtype).tobytes(), name


def save_safetensors(path, tensors, metadata):
    header = {"__metadata__": {str(k): str(v) for k, v in sorted(metadata.items())}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu()
        data, dtype = tensor_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text.encode())
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
