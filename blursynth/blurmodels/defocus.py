"""Eq. (2) of the report: a sharp object over a defocused background,
``I = (k2*m)⊙F + (1 − k2*m)⊙(k1*B)``; the object mask m is the (sharp) truth."""

from __future__ import annotations

import numpy as np

from blursynth.blurmodels import _parts
from blursynth.blurmodels._base import BlurModel, Rendering, register
from blursynth.render import BINARY_THRESHOLD, render_defocus


def sharp_object_truth(image, mask, m2) -> Rendering:
    """The truth of a sharp object over a blurred background: soft ``1 − k2*m``, binary
    ``1 − m`` with m binarised at 0.5 (the object mask itself, as in the report)."""
    return Rendering(image, (1.0 - m2).astype(np.float32), mask < BINARY_THRESHOLD)


@register
class Defocus(BlurModel):
    name = "defocus"
    spawn_index = 1
    blur_type = "defocus"
    fields = (*_parts.DEFOCUS_FIELDS, *_parts.EDGE_FIELDS)

    def draw(self, rng, params):
        return {**_parts.draw_defocus(rng, params), **_parts.edge(params)}

    def draw_camera(self, rng, drawn, params):
        return _parts.draw_defocus_kernel(rng, params)

    def kernels(self, blur):
        return _parts.defocus_kernel_of(blur), _parts.edge_kernel_of(blur)

    def render(self, scene, kernels):
        image, m2 = render_defocus(scene.fg, scene.bg, scene.mask, *kernels)
        return sharp_object_truth(image, scene.mask, m2)
