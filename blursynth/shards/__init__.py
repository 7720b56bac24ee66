"""Sharded HDF5 datasets: the format of a shard, the writer, the reader, verification.

A dataset is a folder::

    DIR/train-00000-of-00010.h5 ...   shards, rows shuffled within the split
    DIR/val-00000-of-00003.h5 ...
    DIR/eval.json                     whole images held out for dense evaluation
    DIR/manifest.json                 schema, parameters, shards (rows, sha256), counts table
    DIR/README.md                     dataset card (Hugging Face front matter)
    DIR/SHA256SUMS                    ``sha256sum -c SHA256SUMS`` checks everything

The manifest's and eval list's types live in :mod:`blursynth.schema`; this package is the
storage layer and reads no images.

=================  =====================================================================
module             what
=================  =====================================================================
``format``         shard names, fields and dtypes, attributes, file checksums
``writer``         :class:`ShardWriter` (atomic shards), ``SHA256SUMS``
``assembly``       shards cut and written by one worker task each (:class:`SplitAssembly`)
``reader``         :func:`open_dataset`, :class:`SplitReader`, :class:`MixedSplit`
``verify``         :func:`verify_dataset`, :func:`dataset_info`
=================  =====================================================================
"""

from blursynth.shards.format import (
    FIELDS,
    PROVENANCE_DTYPES,
    disk_field_name,
    field_specs,
    sha256_file,
    shard_attrs,
    shard_name,
)
from blursynth.shards.reader import MixedSplit, ShardedDataset, SplitReader, open_dataset
from blursynth.shards.verify import counts_table, dataset_info, verify_dataset
from blursynth.shards.writer import ShardRecord, ShardWriter, write_checksums

__all__ = [
    "FIELDS",
    "PROVENANCE_DTYPES",
    "MixedSplit",
    "ShardRecord",
    "ShardWriter",
    "ShardedDataset",
    "SplitReader",
    "counts_table",
    "dataset_info",
    "disk_field_name",
    "field_specs",
    "open_dataset",
    "sha256_file",
    "shard_attrs",
    "shard_name",
    "verify_dataset",
    "write_checksums",
]
