"""A panning shot: the camera follows a moving object, which stays sharp, while the
background streaks along the camera's path: eq. (2) with the motion kernel k in place of k1.
All of its blur is motion blur; the object mask is the (sharp) truth."""

from __future__ import annotations

from blursynth.blurmodels import _parts
from blursynth.blurmodels._base import BlurModel, register
from blursynth.blurmodels.defocus import sharp_object_truth
from blursynth.render import render_pan


@register
class Pan(BlurModel):
    name = "pan"
    spawn_index = 3
    blur_type = "motion"
    fields = (*_parts.MOTION_FIELDS, *_parts.EDGE_FIELDS)

    def draw(self, rng, params):
        return {**_parts.draw_motion(rng, params), **_parts.edge(params)}

    def draw_camera(self, rng, drawn, params):
        return _parts.draw_motion_kernel(rng, drawn, params)

    def kernels(self, blur):
        return _parts.motion_kernel_of(blur), _parts.edge_kernel_of(blur)

    def render(self, scene, kernels):
        image, m2 = render_pan(scene.fg, scene.bg, scene.mask, *kernels)
        return sharp_object_truth(image, scene.mask, m2)
