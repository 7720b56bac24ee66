"""Eq. (1) of the report: a moving object over a sharp background,
``I = k*(m⊙F) + (1 − k*m)⊙B``; the blurred mask ``k*m`` is the truth."""

from __future__ import annotations

from blursynth.blurmodels import _parts
from blursynth.blurmodels._base import BlurModel, Rendering, register
from blursynth.render import BINARY_THRESHOLD, render_motion


@register
class Motion(BlurModel):
    name = "motion"
    spawn_index = 0
    blur_type = "motion"
    fields = _parts.MOTION_FIELDS
    sharp_background = True  # the object moves over it

    def draw(self, rng, params):
        return _parts.draw_motion(rng, params)

    def draw_camera(self, rng, drawn, params):
        return _parts.draw_motion_kernel(rng, drawn, params)

    def kernels(self, blur):
        return (_parts.motion_kernel_of(blur),)

    def render(self, scene, kernels):
        image, km = render_motion(scene.fg, scene.bg, scene.mask, *kernels)
        return Rendering(image, km, km >= BINARY_THRESHOLD)
