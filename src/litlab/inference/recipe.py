"""bundle.json's `raw_inputs`: how a program without litlab turns a user's files into the raw inputs
that `input.is` then scales, step by step and with every number (docs/deploy.md has an
onnxruntime-only example that follows it). Written from the constants litlab's own readers use
(litlab.readers.images, litlab.readers.tables), so the recipe and the code cannot drift apart."""

from typing import Any

from litlab.data_spec import DataSpec, InputKind
from litlab.readers.images import CONVERT, GRAY_WEIGHTS

RESIZE_FILTER = "PIL.Image.Resampling.BILINEAR"  # what litlab.readers.images.conform resizes with


def raw_inputs(spec: DataSpec) -> dict[str, Any]:
    """The recipe for `spec`'s inputs: a table's columns or an image file's pixels."""
    return image_recipe(spec) if spec.kind is InputKind.IMAGE else table_recipe(spec)


def image_recipe(spec: DataSpec) -> dict[str, Any]:
    channels, height, width = spec.input_shape
    scale = 1.0 if spec.pixel_max in (None, 255.0) else float(spec.pixel_max) / 255.0
    r, g, b = GRAY_WEIGHTS
    to_channels = (
        f"to 1 channel: uint8(float32(R) * {r} + float32(G) * {g} + float32(B) * {b}), truncated"
        if channels == 1
        else "to 3 channels: a gray image's channel repeated 3 times"
    )
    modes = ", ".join(f"{mode} -> {to}" for mode, to in CONVERT.items())
    return {
        "from": "an image file (PNG, JPEG, GIF, WebP, BMP), decoded with Pillow",
        "steps": [
            f"decode; convert Pillow modes {modes}; others as stored",
            "as uint8 (C, H, W); drop the alpha channel (RGBA -> RGB, LA -> L)",
            to_channels,
            f"if (H, W) != ({height}, {width}): resize each channel (uint8) to width {width}, height {height} with "
            f"{RESIZE_FILTER}",
            f"as float32, times pixel_scale ({scale!r})",
        ],
        "convert_modes": dict(CONVERT),
        "channels": channels,
        "size": [height, width],
        "gray_weights": list(GRAY_WEIGHTS),
        "resize_filter": RESIZE_FILTER,
        "pixel_scale": scale,
    }


def table_recipe(spec: DataSpec) -> dict[str, Any]:
    assert spec.columns is not None  # a table's spec names its columns
    return {
        "from": "a table with the columns data.columns.inputs (others ignored, any order, no missing values)",
        "steps": [
            "one float32 row of len(data.columns.features) zeros per table row, in the order of data.columns.features",
            "a numeric column: its value, as float32, at the feature of the same name",
            "a column of data.columns.categorical: 1.0 at the feature one_hot[column][str(value)]; a category not "
            "in one_hot leaves all of its features 0",
        ],
        "one_hot": spec.columns.one_hot,
    }
