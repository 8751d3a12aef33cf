"""Reading a ``.npy`` header without loading the array (tensor files can be large and many)."""

from __future__ import annotations

from typing import IO, Any


def read_npy_header(handle: IO[bytes], path: str) -> tuple[Any, tuple[int, ...]]:
    """(dtype, shape) of the ``.npy`` data at ``handle``; raises ValueError or OSError when malformed.

    Versions 1.0 and 2.0 are parsed in place; any other version is loaded from ``path``
    with ``allow_pickle=False`` (object arrays are refused, never unpickled).
    """
    import numpy as np

    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
        shape, dtype = values.shape, values.dtype
    return dtype, tuple(int(d) for d in shape)
