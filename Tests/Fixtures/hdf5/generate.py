#!/usr/bin/env python3
"""Writes the hostile HDF5 fixtures of HDF5HostileFileTests (h5py + numpy; any version).

Run from the repository root: python3 Tests/Fixtures/hdf5/generate.py
"""
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent

# A hard link from a group to itself: g/loop -> g. A walk that follows links without remembering
# the groups it entered never ends.
with h5py.File(HERE / "link_cycle.h5", "w", libver="earliest") as f:
    f["g/x"] = np.array([1.0, 2.0], dtype=np.float32)
    f["g/loop"] = f["g"]

# Datasets whose declared shapes are far larger than the file: chunked storage is allocated
# lazily, so unwritten chunks read as the fill value and the file stays tiny.
with h5py.File(HERE / "huge_shapes.h5", "w", libver="earliest") as f:
    f.create_dataset("overflowing", shape=(2**40, 2**40), dtype="f4", chunks=(1, 1))      # 2^80 elements
    f.create_dataset("beyond_memory", shape=(2**25, 2**25), dtype="f4", chunks=(1, 1))    # 2^50 elements, 4 PiB
    f.create_dataset("many_strings", shape=(2**40,), dtype="S1000", chunks=(1,))           # 2^40 x 1000 bytes
    f["small"] = np.array([3.0], dtype=np.float32)

# An integer type of 1 MiB an element (full precision, so HDF5 accepts creating it): HDF5 sizes
# its conversion buffer by the element size, so a corrupt size means a huge allocation.
with h5py.File(HERE / "wide_element.h5", "w", libver="earliest") as f:
    wide = h5py.h5t.STD_I32LE.copy()
    wide.set_size(1 << 20)
    wide.set_precision(8 << 20)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((1,))
    h5py.h5d.create(f.id, b"wide_ints", wide, h5py.h5s.create_simple((2,)), dcpl=dcpl)
