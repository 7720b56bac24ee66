"""The ``README.md`` dataset card of a dataset folder (Hugging Face front matter)."""

from __future__ import annotations

from blursynth.kinds import get_kind
from blursynth.schema import CLASS_NAMES, Manifest
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


def dataset_card(manifest: Manifest, sources: list[dict] | None = None) -> str:
    """Markdown with YAML front matter (licence placeholder, tasks, size, data files) and a
    body for the dataset's kind: patches or tiles.

    Parameters
    ----------
    manifest : Manifest
        The dataset's ``manifest.json``.
    sources : list of dict, optional
        For a dataset of synthetic images: the source photographs of the ``generate`` run
        (its ``sources.json``), named in the card with their licences.
    """
    body = get_kind(manifest.kind).resolve("card")(manifest)
    return body + _sources_section(sources)


def patch_body(manifest: Manifest) -> str:
    """The card of a patch dataset, front matter included (the ``patches`` kind's)."""
    p = manifest.patch_size
    head = front_matter(
        manifest, f"blursynth {p}x{p} blur patches", ("image-classification", "image-segmentation")
    )
    return head + _patch_body(manifest)


def tile_body(manifest: Manifest) -> str:
    """The card of a tile dataset, front matter included (the ``tiles`` kind's)."""
    s = manifest.row_size
    head = front_matter(
        manifest, f"blursynth {s}x{s} blur segmentation tiles", ("image-segmentation",)
    )
    return head + _tile_body(manifest)


def _sources_section(sources: list[dict] | None) -> str:
    if not sources:
        return ""
    rows = "\n".join(
        f"| {e.get('kind', '?')} | `{e.get('root', '?')}` | {e.get('licence', '?')} |"
        for e in sources
    )
    return f"""
## Source photographs

The synthetic images were composited from these photographs (`sources.json` of the
`blursynth generate` run); their licences apply to this dataset.

| kind | folder | licence |
|---|---|---|
{rows}
"""


def front_matter(manifest: Manifest, pretty_name: str, tasks: tuple[str, ...]) -> str:
    """The Hugging Face front matter every card starts with (one config: the shards)."""
    source = manifest.params["source"]
    total = sum(s.rows for s in manifest.splits.values())
    hf_split = {"train": "train", "val": "validation"}
    data_files = "\n".join(
        f'  - split: {hf_split.get(name, name)}\n    path: "{name}-*.h5"'
        for name in manifest.splits
    )
    task_lines = "\n".join(f"- {t}" for t in tasks)
    return f"""---
license: other  # placeholder: follow the license of the source images
pretty_name: {pretty_name}
task_categories:
{task_lines}
tags:
- blur-detection
- defocus-blur
- motion-blur
size_categories:
- {_size_category(total)}
source_datasets:
- {_SOURCE_NAMES.get(source, source)}
configs:
- config_name: default
  data_files:
{data_files}
---
"""


def _built_with(manifest: Manifest) -> str:
    return f"""Built by blursynth {manifest.blursynth_version}
with:

```
{manifest.command}
```"""


def _patch_body(manifest: Manifest) -> str:
    p, source = manifest.patch_size, manifest.params["source"]
    pixel = "`data` float32 in [0, 1]" if manifest.format == "caffe" else "`patches` uint8"
    fields = "\n".join(
        f"| `{k}` | {v['dtype']} | ({', '.join(map(str, v['shape']))}) |"
        for k, v in manifest.fields.items()
    )
    rows = "\n".join(
        f"| {name} | {s.rows:,} | {s.images} | {len(s.shards)} |"
        for name, s in manifest.splits.items()
    )
    skipped = "".join(f"\n- `{s['stem']}`: {s['reason']}" for s in manifest.skipped)
    return f"""
# Blur patches ({p}x{p}, {source})

Patches of {p}x{p} RGB pixels labelled by the ground truth at their centre pixel
(1 = blurred, 0 = sharp), balanced over blur type (motion/defocus), window category
(sharp / blurred / mixed) and label. {_built_with(manifest)}

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


def _tile_body(manifest: Manifest) -> str:
    p = manifest.params
    s, classes = manifest.row_size, CLASS_NAMES[p["classes"]]
    head = "| split | blur type | tiles | " + " | ".join(classes) + " |"
    table = "\n".join(
        [head, "|" + "---|" * (3 + len(classes))]
        + [
            f"| {c['split']} | {c['blur_type']} | {c['tiles']:,} | "
            + " | ".join(f"{c[k]:,}" for k in classes)
            + " |"
            for c in manifest.counts
        ]
    )
    meaning = ", ".join(f"{k} = {n}" for k, n in enumerate(classes))
    return f"""
# Blur segmentation tiles ({s}x{s}, {p["source"]}, {p["classes"]} classes)

Tiles of whole images with their label maps ({meaning}, 255 = padding, no label).
{_built_with(manifest)}

Fields: `image` uint8 (N, 3, {s}, {s}), `label` uint8 (N, {s}, {s}), `blur_type` (index into
{list(manifest.blur_types)}), `image_index` (into `images` of `manifest.json`), `y`, `x` (the
tile's top-left pixel in the image). {len(manifest.eval_images)} whole images are held out
(`eval.json`), the same as a patch dataset of the same source and seed. Check the files with
`sha256sum -c SHA256SUMS` or `blursynth verify DIR`.

## Counts (tiles, labelled pixels per class)

{table}
"""
