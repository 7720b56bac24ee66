"""The ``README.md`` dataset card of a patch dataset (Hugging Face front matter)."""

from __future__ import annotations

from blursynth.schema import Manifest
from blursynth.shards import counts_table

_SOURCE_NAMES = {
    "shi": "CUHK blur detection dataset (Shi, Xu & Jia, CVPR 2014)",
    "synth": "blursynth synthetic blur (blursynth generate)",
    "folder": "image/ + gt/ folder of blur masks",
}


def _size_category(rows: int) -> str:
    for bound, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if rows < bound:
            return name
    return "10M<n<100M"


def dataset_card(manifest: Manifest) -> str:
    """Markdown with YAML front matter: license placeholder, tasks, sizes, configs, counts.

    Parameters
    ----------
    manifest : Manifest
        The dataset's ``manifest.json``.
    """
    params = manifest.params
    splits = manifest.splits
    total = sum(s.rows for s in splits.values())
    hf_split = {"train": "train", "val": "validation"}
    data_files = "\n".join(
        f'  - split: {hf_split.get(name, name)}\n    path: "{name}-*.h5"' for name in splits
    )
    p = manifest.patch_size
    pixel = "`data` float32 in [0, 1]" if manifest.format == "caffe" else "`patches` uint8"
    fields = "\n".join(
        f"| `{k}` | {v['dtype']} | ({', '.join(map(str, v['shape']))}) |"
        for k, v in manifest.fields.items()
    )
    rows = "\n".join(
        f"| {name} | {s.rows:,} | {s.images} | {len(s.shards)} |" for name, s in splits.items()
    )
    skipped = "".join(f"\n- `{s['stem']}`: {s['reason']}" for s in manifest.skipped)
    return f"""---
license: other  # placeholder: follow the license of the source images
pretty_name: blursynth {p}x{p} blur patches
task_categories:
- image-classification
- image-segmentation
tags:
- blur-detection
- defocus-blur
- motion-blur
size_categories:
- {_size_category(total)}
source_datasets:
- {_SOURCE_NAMES.get(params["source"], params["source"])}
configs:
- config_name: default
  data_files:
{data_files}
---

# Blur patches ({p}x{p}, {params["source"]})

Patches of {p}x{p} RGB pixels labelled by the ground truth at their centre pixel
(1 = blurred, 0 = sharp), balanced over blur type (motion/defocus), window category
(sharp / blurred / mixed) and label. Built by blursynth {manifest.blursynth_version}
with:

```
{manifest.command}
```

## Layout

Sharded HDF5 (`<split>-#####-of-#####.h5`), rows shuffled within each split so that a
contiguous slice is a random batch; datasets are contiguous and uncompressed; every dataset
in a file shares the first dimension (loads with `datasets.load_dataset("hdf5", ...)`).
Pixels: {pixel}, NCHW.

| field | dtype | shape |
|---|---|---|
{fields}

`blur_type` indexes {list(manifest.blur_types)}; `category` indexes {list(manifest.categories)};
`image_index` indexes `images` in `manifest.json`; `center_y`, `center_x` are the centre
pixel in that image (borders are reflect-padded, so every pixel can be a centre).

| split | patches | images | shards |
|---|---:|---:|---:|
{rows}

{len(manifest.eval_images)} whole images are held out for dense evaluation
(`eval.json`). Check the files with `sha256sum -c SHA256SUMS` or `blursynth verify DIR`.

## Counts

{counts_table(manifest.counts)}

## Skipped images

{len(manifest.skipped)} image(s).{skipped}
"""
