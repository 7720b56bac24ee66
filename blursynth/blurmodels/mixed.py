"""Both of the report's models in one image: a sharp object over a defocused background
(eq. 2) and a moving object in front of both (eq. 1): every class in one image, its per-pixel
truth in ``classes/`` (0 sharp, 1 motion, 2 defocus)."""

from __future__ import annotations

from blursynth.blurmodels import _parts
from blursynth.blurmodels._base import BlurModel, Rendering, register
from blursynth.render import render_mixed


@register
class Mixed(BlurModel):
    name = "mixed"
    spawn_index = 2
    blur_type = None
    fields = (*_parts.MOTION_FIELDS, *_parts.DEFOCUS_FIELDS, *_parts.EDGE_FIELDS)
    objects = 2  # fg: the sharp object; fg2: the moving one
    uniform = False  # always holds its objects
    outputs = ("classes",)

    def draw(self, rng, params):
        return {
            **_parts.draw_motion(rng, params),
            **_parts.draw_defocus(rng, params),
            **_parts.edge(params),
        }

    def draw_camera(self, rng, drawn, params):
        return {
            **_parts.draw_motion_kernel(rng, drawn, params),
            **_parts.draw_defocus_kernel(rng, params),
        }

    def kernels(self, blur):
        return (
            _parts.motion_kernel_of(blur),
            _parts.defocus_kernel_of(blur),
            _parts.edge_kernel_of(blur),
        )

    def render(self, scene, kernels):
        ((f2, m2),) = scene.others
        image, classes, soft = render_mixed(scene.fg, f2, scene.bg, scene.mask, m2, *kernels)
        return Rendering(image, soft, classes != 0, {"classes": classes})
