"""Read PyTorch's *legacy* (pre-1.6, non-zip) ``.pth`` state dicts without PyTorch.

The legacy format is a stream of pickles followed by raw storages::

    pickle(magic number) pickle(protocol version) pickle(sys info)
    pickle(state dict; tensors refer to storages by persistent id)
    pickle(list of storage keys)
    for each key: int64 little-endian element count, then the raw little-endian elements

The unpickler here resolves only the handful of globals a state dict needs (the tensor rebuild
function, storage types, ``OrderedDict``); anything else raises, so a file cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Dict, Union

import numpy as np

from ..errors import TrainingError

__all__ = ["load_legacy_state_dict"]

_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel, self.data = dtype, int(numel), None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, int(offset), tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _TensorRef(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh):
        super().__init__(fh)
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a state dict")

    def persistent_load(self, pid):
        # ("storage", type, key, location, numel[, view metadata]); views are not supported
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage" or (len(pid) == 6 and pid[5]):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, numel)
        return self.storages[key]


def load_legacy_state_dict(path: Union[str, Path]) -> "collections.OrderedDict[str, np.ndarray]":
    """Tensors of a legacy ``torch.save`` state dict as numpy arrays (name → array, file order).

    Raises:
        TrainingError: the file is not a legacy PyTorch state dict or is truncated.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            if pickle.load(fh) != _MAGIC:
                raise TrainingError(f"{path}: not a legacy PyTorch file (bad magic number; zip files are not supported)")
            pickle.load(fh)  # protocol version
            sys_info = pickle.load(fh)
            if not sys_info.get("little_endian", True):
                raise TrainingError(f"{path}: big-endian PyTorch files are not supported")
            unpickler = _Unpickler(fh)
            state = unpickler.load()
            keys = pickle.load(fh)
            for key in keys:
                storage = unpickler.storages[key]
                (numel,) = struct.unpack("<q", fh.read(8))
                if numel != storage.numel:
                    raise TrainingError(f"{path}: storage {key} holds {numel} elements, expected {storage.numel}")
                raw = fh.read(numel * storage.dtype.itemsize)
                if len(raw) != numel * storage.dtype.itemsize:
                    raise TrainingError(f"{path}: truncated in storage {key}")
                storage.data = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    except (pickle.UnpicklingError, EOFError, struct.error, KeyError, AttributeError) as exc:
        raise TrainingError(f"{path}: cannot read as a legacy PyTorch state dict ({exc})") from exc
    if not isinstance(state, dict):
        raise TrainingError(f"{path}: holds a {type(state).__name__}, not a state dict")
    out: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef) or ref.storage.data is None:
            raise TrainingError(f"{path}: entry {name!r} is not a tensor")
        item = ref.storage.dtype.itemsize
        need = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) + 1 if ref.size else ref.offset + 1
        if min(ref.size, default=1) > 0 and need > ref.storage.numel:
            raise TrainingError(f"{path}: tensor {name!r} reaches past its storage")
        view = np.lib.stride_tricks.as_strided(
            ref.storage.data[ref.offset:], shape=ref.size, strides=[s * item for s in ref.stride]
        )
        out[name] = np.array(view, copy=True)
    return out
