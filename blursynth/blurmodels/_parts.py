"""Draws and kernels that several blur models share: a motion kernel (the report's line, or
a camera-shake trajectory), a defocus kernel (the report's Gaussian k1, or a disk), and the
small Gaussian k2 that softens a sharp object's edge in eq. (2)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from blursynth.kernels import disk_kernel, gaussian_kernel, motion_kernel, trajectory_kernel

#: Steps of a shake trajectory (its shape; its length is drawn from ``length``).
SHAKE_STEPS = 32

MOTION_FIELDS = ("length", "angle", "trajectory")
DEFOCUS_FIELDS = ("sigma1", "radius")
EDGE_FIELDS = ("sigma2",)


def draw_motion(rng: np.random.Generator, params) -> dict:
    """The report's motion draws: a length and an angle."""
    return {
        "length": float(rng.uniform(*params.length)),
        "angle": float(rng.uniform(*params.angle)),
    }


def draw_defocus(rng: np.random.Generator, params) -> dict:
    """The report's defocus draw: the background's Gaussian sigma k1."""
    return {"sigma1": float(rng.uniform(*params.sigma1))}


def edge(params) -> dict:
    """Eq. (2)'s edge softening k2 (fixed, not drawn)."""
    return {"sigma2": float(params.sigma2)}


def draw_motion_kernel(rng: np.random.Generator, drawn: dict, params) -> dict:
    """``--motion-kernel shake``: a trajectory of the drawn length."""
    if params.motion_kernel == "shake":
        return {"trajectory": shake_trajectory(rng, drawn["length"])}
    return {}


def draw_defocus_kernel(rng: np.random.Generator, params) -> dict:
    """``--defocus-kernel disk``: a radius, and no Gaussian sigma (the disk replaces it)."""
    if params.defocus_kernel == "disk":
        return {"radius": float(rng.uniform(*params.radius)), "sigma1": None}
    return {}


def motion_kernel_of(blur: Mapping) -> np.ndarray:
    """The motion kernel k: the record's shake trajectory, or its line."""
    if blur.get("trajectory") is not None:
        return trajectory_kernel(blur["trajectory"])
    return motion_kernel(blur["length"], blur["angle"])


def defocus_kernel_of(blur: Mapping) -> np.ndarray:
    """The defocus kernel k1: a disk of the record's radius, or its Gaussian."""
    if blur.get("radius") is not None:
        return disk_kernel(blur["radius"])
    return gaussian_kernel(blur["sigma1"])


def edge_kernel_of(blur: Mapping) -> np.ndarray:
    """Eq. (2)'s k2."""
    return gaussian_kernel(blur["sigma2"])


def shake_trajectory(
    rng: np.random.Generator, length: float, steps: int = SHAKE_STEPS
) -> tuple[tuple[float, float], ...]:
    """A random camera-shake path of total length ``length`` pixels (Boracchi & Foi 2012).

    A particle starts at the origin with a random unit velocity; at each of ``steps`` steps
    its velocity changes by a Gaussian jolt (sd 0.6), a pull back towards the origin (0.1 of
    its position, which keeps the path compact, like a hand holding the camera), and with
    probability 0.1 an impulsive shake (a jolt 3x larger). The path is then scaled so that
    its length is exactly ``length``. Points are ``(x, y)`` in pixels, y down, rounded to
    1e-6 px (they are kept in the record; the kernel is built from them by
    :func:`blursynth.kernels.trajectory_kernel`).
    """
    if not np.isfinite(length) or length < 1:
        raise ValueError(f"shake length must be >= 1, got {length}")
    angle = rng.uniform(0.0, 2 * np.pi)
    v = np.array([np.cos(angle), np.sin(angle)])
    x = np.zeros(2)
    path = [x.copy()]
    for _ in range(steps):
        jolt = rng.normal(0.0, 0.6, 2)
        if rng.random() < 0.1:
            jolt *= 3.0
        v = v + jolt - 0.1 * x
        x = x + v
        path.append(x.copy())
    pts = np.array(path)
    total = np.hypot(*np.diff(pts, axis=0).T).sum()
    pts *= length / total
    return tuple((round(float(px), 6), round(float(py), 6)) for px, py in pts)
