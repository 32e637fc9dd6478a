"""A second street-scene style, written apart from training/synth.py: a held-out test set, never trained on.

Its own camera (a pitched pinhole, not a horizon row), layout (a road that bends, brick pavements, shop
fronts, parked cars, hedges), palette and object models (round-topped cones, channelizer posts, European
barrier boards, red-white water barriers, red-bordered triangle signs, tripod diamonds, arrow trailers,
excavators), drawn with OpenCV's anti-aliased rasteriser rather than PIL. Non-roadwork scenes carry the
look-alikes a real street has: orange and red cars, red round signs, yield triangles, striped awnings,
orange bins, hydrants. Only the image-level answer (roadwork or not) is produced.

    python -m training.heldout OUT_DIR --n 16 --seed 7   # writes JPEGs and labels.json to look at
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

Rng = np.random.Generator
Color = tuple[int, int, int]
Arr = npt.NDArray[np.uint8]

SIZES = ((768, 432), (640, 480), (720, 540), (800, 450))
ASPHALT = ((88, 92, 104), (110, 104, 96), (70, 72, 78), (150, 146, 138), (124, 128, 136))
PAVING = ((168, 92, 74), (150, 140, 128), (186, 170, 150), (120, 116, 112))
FACADES = ((236, 214, 170), (190, 206, 214), (214, 168, 150), (160, 170, 140), (240, 236, 226), (130, 120, 140))
SAFETY = ((255, 96, 0), (246, 80, 24), (255, 128, 16), (232, 64, 32))
CARS = ((250, 250, 250), (20, 20, 22), (128, 130, 134), (40, 70, 150), (160, 20, 28), (60, 110, 80), (210, 200, 170))
ORANGES = ((240, 112, 24), (222, 60, 30), (252, 150, 24), (200, 40, 40))


def _j(rng: Rng, c: Color, a: int = 14) -> Color:
    return tuple(int(np.clip(v + rng.integers(-a, a + 1), 0, 255)) for v in c)  # type: ignore[return-value]


def _pick(rng: Rng, seq: tuple[Color, ...], a: int = 14) -> Color:
    return _j(rng, seq[int(rng.integers(len(seq)))], a)


@dataclass
class View:
    """Pitched pinhole camera: height hc (m), pitch down (rad), focal f (px), principal point (cx, cy)."""

    w: int
    h: int
    hc: float
    pitch: float
    f: float
    cx: float
    cy: float
    bend: float  # lateral road offset amplitude (m)
    period: float  # its wavelength (m)

    def road_x(self, z: float) -> float:
        return self.bend * (1 - math.cos(z / self.period * 2 * math.pi))

    def proj(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        """Image (col, row) and depth along the optical axis of world point (x lateral, y up, z ahead)."""
        up = (y - self.hc) * math.cos(self.pitch) + z * math.sin(self.pitch)
        fwd = z * math.cos(self.pitch) - (y - self.hc) * math.sin(self.pitch)
        fwd = max(fwd, 0.05)
        return self.cx + self.f * x / fwd, self.cy - self.f * up / fwd, fwd

    def px(self, x: float, y: float, z: float) -> tuple[int, int]:
        u, v, _ = self.proj(x + self.road_x(z), y, z)
        return round(u * 8), round(v * 8)  # 3 bits of sub-pixel precision for cv2

    def scale(self, z: float) -> float:
        return self.f / max(z * math.cos(self.pitch), 0.05)


@dataclass
class Pic:
    view: View
    img: Arr
    todo: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def poly(self, pts: list[tuple[float, float, float]], c: Color) -> None:
        arr = np.array([self.view.px(*p) for p in pts], dtype=np.int32)
        cv2.fillPoly(self.img, [arr], c, cv2.LINE_AA, shift=3)

    def billboard(self, x: float, z: float, shape: list[tuple[float, float]], c: Color) -> None:
        """A flat shape facing the camera, standing on the ground at (x, z); shape in metres (u right, v up)."""
        self.poly([(x + u, v, z) for u, v in shape], c)

    def disc(self, x: float, y: float, z: float, r: float, c: Color) -> None:
        u, v = self.view.px(x, y, z)
        cv2.circle(self.img, (u, v), max(1, int(r * self.view.scale(z) * 8)), c, -1, cv2.LINE_AA, shift=3)

    def later(self, z: float, fn: Callable[[], None]) -> None:
        self.todo.append((z, fn))


def _box(p: Pic, x: float, z: float, w: float, hgt: float, d: float, c: Color, y0: float = 0.0) -> None:
    """A box: its side facing the road axis, top, and near face (flat shaded)."""
    side = x + w / 2 if x < 0 else x - w / 2
    p.poly([(side, y0, z), (side, y0, z + d), (side, y0 + hgt, z + d), (side, y0 + hgt, z)], _shade(c, 0.8))
    p.poly([(x - w / 2, y0 + hgt, z), (x + w / 2, y0 + hgt, z), (x + w / 2, y0 + hgt, z + d),
            (x - w / 2, y0 + hgt, z + d)], _shade(c, 1.1))  # fmt: skip
    p.poly([(x - w / 2, y0, z), (x + w / 2, y0, z), (x + w / 2, y0 + hgt, z), (x - w / 2, y0 + hgt, z)], c)


def _shade(c: Color, k: float) -> Color:
    return tuple(int(min(255, v * k)) for v in c)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------- roadwork object models
def cone(p: Pic, x: float, z: float, rng: Rng) -> None:
    hgt, col = rng.uniform(0.5, 0.9), _pick(rng, SAFETY)
    r = hgt * rng.uniform(0.16, 0.24)
    p.billboard(x, z, [(-r * 1.6, 0), (r * 1.6, 0), (r * 1.6, 0.05), (-r * 1.6, 0.05)], (30, 30, 30))
    p.billboard(x, z, [(-r, 0.05), (r, 0.05), (r * 0.15, hgt), (-r * 0.15, hgt)], col)
    p.disc(x, hgt, z, r * 0.15, col)
    for k in range(int(rng.integers(1, 3))):
        a, b = 0.45 + 0.2 * k, 0.55 + 0.2 * k
        wa, wb = r * (1 - a * 0.85), r * (1 - b * 0.85)
        p.billboard(x, z, [(-wa, a * hgt), (wa, a * hgt), (wb, b * hgt), (-wb, b * hgt)], (245, 245, 245))


def channelizer(p: Pic, x: float, z: float, rng: Rng) -> None:
    hgt, r, col = rng.uniform(0.9, 1.15), rng.uniform(0.1, 0.3), _pick(rng, SAFETY)
    p.billboard(x, z, [(-r * 1.5, 0), (r * 1.5, 0), (r * 1.3, 0.08), (-r * 1.3, 0.08)], (25, 25, 25))
    n = int(rng.integers(4, 7))
    for k in range(n):
        a, b = 0.08 + (hgt - 0.08) * k / n, 0.08 + (hgt - 0.08) * (k + 1) / n
        p.billboard(x, z, [(-r, a), (r, a), (r, b), (-r, b)], col if k % 2 == 0 else (240, 240, 240))


def barrier_board(p: Pic, x: float, z: float, rng: Rng) -> None:
    """A European barrier board (red/white or orange/white diagonals) on two feet."""
    w, y0, hb = rng.uniform(1.2, 2.2), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.3)
    col = (210, 20, 30) if rng.random() < 0.6 else _pick(rng, SAFETY)
    for u in (-w * 0.4, w * 0.4):
        p.billboard(x, z, [(u - 0.03, 0), (u + 0.03, 0), (u + 0.03, y0), (u - 0.03, y0)], (70, 70, 70))
        p.billboard(x, z, [(u - 0.25, 0), (u + 0.25, 0), (u + 0.2, 0.06), (u - 0.2, 0.06)], (240, 200, 20))
    p.billboard(x, z, [(-w / 2, y0), (w / 2, y0), (w / 2, y0 + hb), (-w / 2, y0 + hb)], (240, 240, 240))
    step = hb * 1.2
    u = -w / 2
    while u < w / 2:
        a, b = u, min(u + step / 2, w / 2)
        p.billboard(x, z, [(a, y0), (b, y0), (min(b + hb * 0.5, w / 2), y0 + hb), (min(a + hb * 0.5, w / 2), y0 + hb)],
                    col)  # fmt: skip
        u += step


def water_barrier(p: Pic, x: float, z: float, rng: Rng) -> None:
    """A run of plastic water-filled barriers along the road, alternating red and white."""
    n = int(rng.integers(3, 9))
    cols = ((220, 30, 30), (240, 240, 240)) if rng.random() < 0.7 else (_pick(rng, SAFETY), (240, 240, 240))
    for k in range(n):
        zz = z + k * 1.9
        p.poly([(x, 0, zz), (x, 0, zz + 1.8), (x, 0.8, zz + 1.6), (x, 0.8, zz + 0.2)], cols[k % 2])
        p.poly([(x - 0.2, 0.8, zz + 0.2), (x, 0.8, zz + 0.2), (x, 0.8, zz + 1.6), (x - 0.2, 0.8, zz + 1.6)],
               _shade(cols[k % 2], 1.1))  # fmt: skip


def triangle_sign(p: Pic, x: float, z: float, rng: Rng) -> None:
    """The European roadworks sign: a red-bordered triangle, yellow or white inside, with a digging figure."""
    s, y0 = rng.uniform(0.7, 1.1), rng.uniform(0.3, 1.6)
    p.billboard(x, z, [(-0.03, 0), (0.03, 0), (0.03, y0), (-0.03, y0)], (120, 120, 124))
    h = s * 0.87
    p.billboard(x, z, [(-s / 2, y0), (s / 2, y0), (0, y0 + h)], (200, 20, 28))
    inner = (250, 210, 30) if rng.random() < 0.5 else (245, 245, 245)
    p.billboard(x, z, [(-s * 0.36, y0 + 0.08 * s), (s * 0.36, y0 + 0.08 * s), (0, y0 + h - 0.15 * s)], inner)
    p.billboard(x, z, [(-0.1 * s, y0 + 0.15 * s), (0.05 * s, y0 + 0.45 * s), (0.12 * s, y0 + 0.4 * s)], (15, 15, 15))
    p.disc(x + 0.05 * s, y0 + 0.52 * s, z, 0.05 * s, (15, 15, 15))
    roadwork_plate(p, x, z, y0, s, rng)


def roadwork_plate(p: Pic, x: float, z: float, y0: float, s: float, rng: Rng) -> None:
    if rng.random() < 0.4:
        p.billboard(x, z, [(-s * 0.4, y0 - 0.3), (s * 0.4, y0 - 0.3), (s * 0.4, y0 - 0.05), (-s * 0.4, y0 - 0.05)],
                    (245, 245, 245))  # fmt: skip


def tripod_diamond(p: Pic, x: float, z: float, rng: Rng) -> None:
    s = rng.uniform(0.8, 1.2)
    for u in (-0.4 * s, 0.0, 0.4 * s):
        p.billboard(x, z, [(u - 0.02, 0), (u + 0.02, 0), (0.02, 0.6 * s), (-0.02, 0.6 * s)], (60, 60, 60))
    c = _pick(rng, SAFETY) if rng.random() < 0.7 else (250, 200, 20)
    y = 0.6 * s
    p.billboard(x, z, [(0, y), (s / 2, y + s / 2), (0, y + s), (-s / 2, y + s / 2)], (20, 20, 20))
    p.billboard(x, z, [(0, y + 0.05), (s / 2 - 0.05, y + s / 2), (0, y + s - 0.05), (-s / 2 + 0.05, y + s / 2)], c)


def arrow_trailer(p: Pic, x: float, z: float, rng: Rng) -> None:
    w = rng.uniform(1.8, 2.4)
    _box(p, x, z, w, 0.7, 2.5, (250, 190, 20), y0=0.3)
    p.billboard(x, z, [(-w / 2, 1.0), (w / 2, 1.0), (w / 2, 2.4), (-w / 2, 2.4)], (20, 20, 22))
    lit = (255, 220, 120)
    right = rng.random() < 0.5
    for k in range(5):
        u = (-0.7 + 0.3 * k) * w / 2 * (1 if right else -1)
        p.disc(x + u, 1.7, z, 0.07, lit)
    tip = 0.75 * w / 2 * (1 if right else -1)
    for dv in (-0.3, 0.3):
        p.disc(x + tip - 0.25 * (1 if right else -1), 1.7 + dv, z, 0.07, lit)


def excavator(p: Pic, x: float, z: float, rng: Rng) -> None:
    col = (250, 180, 10) if rng.random() < 0.7 else (240, 110, 20)
    _box(p, x, z, 2.4, 0.8, 3.0, (40, 40, 40))
    _box(p, x, z + 0.5, 2.2, 1.4, 2.2, col, y0=0.8)
    _box(p, x - 0.5, z + 0.5, 0.9, 1.0, 1.0, (120, 160, 190), y0=2.2)
    p.poly([(x + 0.4, 2.0, z), (x + 0.6, 2.0, z), (x + 1.6, 3.5, z - 1.5), (x + 1.4, 3.5, z - 1.5)], col)
    p.poly([(x + 1.4, 3.5, z - 1.5), (x + 1.6, 3.5, z - 1.5), (x + 1.8, 0.8, z - 3.0), (x + 1.6, 0.8, z - 3.0)], col)


def dig(p: Pic, x: float, z: float, rng: Rng) -> None:
    """A trench: a dark patch with spoil heaps (not evidence by itself)."""
    w, d = rng.uniform(1, 3), rng.uniform(2, 6)
    p.poly([(x - w / 2, 0.01, z), (x + w / 2, 0.01, z), (x + w / 2, 0.01, z + d), (x - w / 2, 0.01, z + d)],
           (60, 48, 40))  # fmt: skip
    p.billboard(x + w / 2 + 0.6, z + d / 2, [(-0.7, 0), (0.7, 0), (0, 0.6)], (130, 105, 80))


EVIDENCE = (cone, channelizer, barrier_board, water_barrier, triangle_sign, tripod_diamond, arrow_trailer)


# ---------------------------------------------------------------------------------------------- look-alikes, clutter
def car(p: Pic, x: float, z: float, rng: Rng, color: Color | None = None) -> None:
    c = color or _pick(rng, CARS, 10)
    w, ln = rng.uniform(1.7, 2.0), rng.uniform(3.8, 4.8)
    _box(p, x, z, w, 0.8, ln, c, y0=0.25)
    _box(p, x, z + 0.8, w * 0.9, 0.6, ln * 0.5, _shade(c, 0.85), y0=1.05)
    p.billboard(x, z, [(-w * 0.38, 1.1), (w * 0.38, 1.1), (w * 0.34, 1.55), (-w * 0.34, 1.55)], (50, 60, 70))
    for u in (-w * 0.38, w * 0.38):
        p.disc(x + u, 0.3, z, 0.3, (18, 18, 18))
    p.billboard(x, z, [(-w / 2, 0.55), (-w / 2 + 0.25, 0.55), (-w / 2 + 0.25, 0.7), (-w / 2, 0.7)], (240, 40, 40))
    p.billboard(x, z, [(w / 2 - 0.25, 0.55), (w / 2, 0.55), (w / 2, 0.7), (w / 2 - 0.25, 0.7)], (240, 40, 40))


def round_sign(p: Pic, x: float, z: float, rng: Rng) -> None:
    y, r = rng.uniform(1.8, 2.6), rng.uniform(0.3, 0.45)
    p.billboard(x, z, [(-0.03, 0), (0.03, 0), (0.03, y), (-0.03, y)], (140, 140, 144))
    p.disc(x, y, z, r, (210, 20, 30))
    kind = int(rng.integers(3))
    if kind == 0:  # no entry
        p.billboard(x, z, [(-r * 0.7, y - 0.08), (r * 0.7, y - 0.08), (r * 0.7, y + 0.08), (-r * 0.7, y + 0.08)],
                    (245, 245, 245))  # fmt: skip
    else:  # speed limit / no parking
        p.disc(x, y, z, r * 0.78, (245, 245, 245) if kind == 1 else (30, 70, 160))


def yield_sign(p: Pic, x: float, z: float, rng: Rng) -> None:
    s, y = rng.uniform(0.7, 1.0), rng.uniform(1.6, 2.2)
    p.billboard(x, z, [(-0.03, 0), (0.03, 0), (0.03, y), (-0.03, y)], (140, 140, 144))
    p.billboard(x, z, [(-s / 2, y + s * 0.87), (s / 2, y + s * 0.87), (0, y)], (200, 20, 28))
    p.billboard(x, z, [(-s * 0.33, y + s * 0.77), (s * 0.33, y + s * 0.77), (0, y + s * 0.2)], (245, 245, 245))


def orange_bin(p: Pic, x: float, z: float, rng: Rng) -> None:
    c = _pick(rng, ORANGES)
    p.billboard(x, z, [(-0.3, 0), (0.3, 0), (0.34, 1.0), (-0.34, 1.0)], c)
    p.billboard(x, z, [(-0.36, 1.0), (0.36, 1.0), (0.36, 1.1), (-0.36, 1.1)], _shade(c, 0.7))


def hydrant(p: Pic, x: float, z: float, rng: Rng) -> None:
    c = (200, 24, 24) if rng.random() < 0.7 else (250, 200, 20)
    p.billboard(x, z, [(-0.12, 0), (0.12, 0), (0.12, 0.6), (-0.12, 0.6)], c)
    p.disc(x, 0.62, z, 0.13, c)


def person(p: Pic, x: float, z: float, rng: Rng) -> None:
    top, legs = _pick(rng, CARS, 30), _pick(rng, ((30, 30, 60), (60, 50, 40), (20, 20, 20)))
    hgt = rng.uniform(1.55, 1.9)
    p.billboard(x, z, [(-0.18, 0), (0.18, 0), (0.16, hgt * 0.5), (-0.16, hgt * 0.5)], legs)
    p.billboard(x, z, [(-0.22, hgt * 0.5), (0.22, hgt * 0.5), (0.2, hgt * 0.85), (-0.2, hgt * 0.85)], top)
    p.disc(x, hgt * 0.92, z, 0.11, _pick(rng, ((230, 190, 160), (160, 110, 80), (90, 60, 40))))


def tree(p: Pic, x: float, z: float, rng: Rng) -> None:
    hgt = rng.uniform(3, 8)
    p.billboard(x, z, [(-0.12, 0), (0.12, 0), (0.1, hgt * 0.6), (-0.1, hgt * 0.6)], (80, 60, 45))
    g = _pick(rng, ((60, 110, 50), (90, 130, 60), (40, 80, 40), (120, 140, 60)))
    for _ in range(int(rng.integers(3, 7))):
        p.disc(x + rng.normal(0, 0.8), hgt * rng.uniform(0.6, 0.95), z, rng.uniform(0.8, 1.6), _j(rng, g, 16))


def lamp(p: Pic, x: float, z: float, rng: Rng) -> None:
    hgt = rng.uniform(5, 8)
    p.billboard(x, z, [(-0.06, 0), (0.06, 0), (0.05, hgt), (-0.05, hgt)], (50, 55, 60))
    p.disc(x, hgt, z, 0.25, (230, 230, 210))


def traffic_light(p: Pic, x: float, z: float, rng: Rng) -> None:
    y = rng.uniform(2.5, 3.2)
    p.billboard(x, z, [(-0.05, 0), (0.05, 0), (0.05, y), (-0.05, y)], (40, 40, 40))
    p.billboard(x, z, [(-0.18, y), (0.18, y), (0.18, y + 0.9), (-0.18, y + 0.9)], (20, 20, 20))
    on = int(rng.integers(3))
    for k, c in enumerate(((230, 30, 30), (240, 170, 20), (40, 210, 80))):
        p.disc(x, y + 0.75 - 0.3 * k, z, 0.1, c if k == on else _shade(c, 0.3))


LOOKALIKES = (round_sign, yield_sign, orange_bin, hydrant, person, traffic_light)


# -------------------------------------------------------------------------------------------------------- the street
def _view(rng: Rng) -> View:
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    return View(w=w, h=h, hc=rng.uniform(1.1, 2.6), pitch=math.radians(rng.uniform(-2, 9)), f=w * rng.uniform(0.6, 1.1),
                cx=w * rng.uniform(0.42, 0.58), cy=h * rng.uniform(0.42, 0.55), bend=rng.uniform(-4, 4),
                period=rng.uniform(120, 400))  # fmt: skip


def _ground(p: Pic, rng: Rng, half: float, walk: float) -> None:
    v = p.view
    sky_top, sky_low = _pick(rng, ((90, 150, 220), (150, 160, 175), (110, 130, 190), (200, 170, 150))), None
    sky_low = _j(rng, (225, 230, 235), 20)
    for r in range(v.h):
        t = r / v.h
        p.img[r] = [int(a * (1 - t) + b * t) for a, b in zip(sky_top, sky_low, strict=True)]
    far = 400.0
    if rng.random() < 0.6:  # distant hills
        col = _pick(rng, ((120, 140, 120), (140, 150, 170), (100, 120, 90)))
        pts = [(-300 + 30 * k, rng.uniform(5, 30), far) for k in range(21)]
        p.poly([(-300, 0, far), *pts, (300, 0, far)], col)
    grass = _pick(rng, ((100, 140, 70), (150, 140, 100), (120, 120, 110), (80, 110, 60)))
    p.poly([(-300, 0, 0.5), (300, 0, 0.5), (300, 0, far), (-300, 0, far)], grass)
    asphalt, paving = _pick(rng, ASPHALT, 8), _pick(rng, PAVING, 10)
    zs = np.geomspace(0.5, far, 60)
    for za, zb in itertools.pairwise(zs):
        for x0, x1, c in ((-half - walk, -half, paving), (half, half + walk, paving), (-half, half, asphalt)):
            p.poly([(x0, 0, za), (x1, 0, za), (x1, 0, zb), (x0, 0, zb)], c)
        for xc in (-half, half):  # kerbs
            kerb = [(xc - 0.12, 0.0, za), (xc + 0.12, 0.0, za), (xc + 0.12, 0.0, zb), (xc - 0.12, 0.0, zb)]
            p.poly(kerb, (200, 198, 190))
    style = int(rng.integers(3))
    z = 1.0
    while z < 150:  # centre line: dashed white, double yellow, or none
        if style == 0:
            p.poly([(-0.07, 0, z), (0.07, 0, z), (0.07, 0, z + 3), (-0.07, 0, z + 3)], (235, 235, 230))
            z += 9
        elif style == 1:
            for u in (-0.2, 0.1):
                p.poly([(u, 0, z), (u + 0.1, 0, z), (u + 0.1, 0, z + 10), (u, 0, z + 10)], (230, 190, 40))
            z += 10
        else:
            break
    for _ in range(int(rng.integers(0, 6))):  # patches and cracks
        x, zz, s = rng.uniform(-half, half), rng.uniform(3, 60), rng.uniform(0.5, 3)
        p.poly([(x, 0.005, zz), (x + s, 0.005, zz), (x + s, 0.005, zz + s * 2), (x, 0.005, zz + s * 2)],
               _shade(asphalt, rng.uniform(0.7, 1.2)))  # fmt: skip


def _facades(p: Pic, rng: Rng, half: float, walk: float) -> None:
    for sg in (-1.0, 1.0):
        if rng.random() < 0.25:
            continue
        x = sg * (half + walk)
        z = rng.uniform(2, 10)
        while z < 200:
            ln, hgt, col = rng.uniform(6, 20), rng.uniform(5, 22), _pick(rng, FACADES)
            p.poly([(x, 0, z), (x, 0, z + ln), (x, hgt, z + ln), (x, hgt, z)], col)
            for fl in range(int(hgt // 3.5)):
                for k in range(int(ln // 2.5)):
                    za, ya = z + 0.6 + 2.5 * k, 3.5 + fl * 3.5
                    p.poly([(x, ya, za), (x, ya, za + 1.2), (x, ya + 1.6, za + 1.2), (x, ya + 1.6, za)], (70, 80, 100))
            if rng.random() < 0.4:  # striped awning over the shop front
                _awning(p, x, z + 0.5, z + ln - 0.5, sg, rng)
            z += ln + rng.uniform(0, 3)


def _awning(p: Pic, x: float, z0: float, z1: float, sg: float, rng: Rng) -> None:
    col = _pick(rng, ((210, 30, 40), (240, 120, 20), (30, 120, 70), (240, 240, 240)))
    n = max(3, int((z1 - z0) / 0.6))
    for k in range(n):
        a, b = z0 + (z1 - z0) * k / n, z0 + (z1 - z0) * (k + 1) / n
        p.poly([(x, 3.0, a), (x, 3.0, b), (x - sg * 1.3, 2.3, b), (x - sg * 1.3, 2.3, a)],
               col if k % 2 == 0 else (245, 245, 240))  # fmt: skip


def _roadwork(p: Pic, rng: Rng, half: float) -> None:
    """A work zone ahead: a taper of devices closing one side, a trench, signs, maybe machinery."""
    side = 1.0 if rng.random() < 0.6 else -1.0
    z0 = rng.uniform(5, 22)
    n = int(rng.integers(2, 9))
    device = EVIDENCE[int(rng.integers(3))] if rng.random() < 0.8 else EVIDENCE[int(rng.integers(len(EVIDENCE)))]
    for k in range(n):
        zz = z0 + k * rng.uniform(2.0, 4.0)
        xx = side * (half - 0.4 - min(k, 3) * 0.8)
        p.later(zz, partial(device, p, xx, zz, rng))
    if rng.random() < 0.5:
        zz = z0 + rng.uniform(1, 6)
        p.later(zz + 6, partial(dig, p, side * (half - 1.8), zz, rng))
    if rng.random() < 0.6:
        sign = triangle_sign if rng.random() < 0.6 else tripod_diamond
        zz = z0 - rng.uniform(1, 4)
        p.later(zz, partial(sign, p, side * (half + 0.5), max(zz, 4.0), rng))
    if rng.random() < 0.25:
        zz = z0 + n * 2.5 + 2
        kind = arrow_trailer if rng.random() < 0.5 else excavator
        p.later(zz, partial(kind, p, side * (half - 1.5), zz, rng))
    if rng.random() < 0.2:
        zz = z0 + rng.uniform(4, 12)
        p.later(zz, partial(water_barrier, p, side * (half - 2.5), zz, rng))


def _clutter(p: Pic, rng: Rng, half: float, walk: float, roadwork: bool) -> None:
    for _ in range(int(rng.integers(0, 5))):  # traffic and parked cars; orange / red ones often
        lookalike = rng.random() < (0.25 if roadwork else 0.45)
        color = _pick(rng, ORANGES) if lookalike else None
        parked = rng.random() < 0.5
        xx = (half - 1.1) * (1 if rng.random() < 0.5 else -1) if parked else rng.uniform(-half + 1, half - 1)
        zz = rng.uniform(6, 80)
        p.later(zz, partial(car, p, xx, zz, rng, color))
    for _ in range(int(rng.integers(1, 6) if not roadwork else rng.integers(0, 3))):
        fn = LOOKALIKES[int(rng.integers(len(LOOKALIKES)))]
        sg = 1.0 if rng.random() < 0.5 else -1.0
        xx, zz = sg * (half + rng.uniform(0.3, max(0.4, walk))), rng.uniform(4, 40)
        p.later(zz, partial(fn, p, xx, zz, rng))
    for _ in range(int(rng.integers(0, 8))):
        fn = (tree, lamp, person)[int(rng.integers(3))]
        sg = 1.0 if rng.random() < 0.5 else -1.0
        xx, zz = sg * (half + rng.uniform(0.3, walk + 0.5)), rng.uniform(4, 90)
        p.later(zz, partial(fn, p, xx, zz, rng))


def _grade(rng: Rng, img: Arr) -> Arr:
    """Colour temperature, exposure, vignette, grain, sometimes blur."""
    f = img.astype(np.float32)
    f *= np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.88, 1.1)], dtype=np.float32) * rng.uniform(0.7, 1.15)
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    f *= (1 - rng.uniform(0.0, 0.6) * r2)[..., None]
    f += rng.normal(0, rng.uniform(1, 5), f.shape).astype(np.float32)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = np.asarray(cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.4)), dtype=np.uint8)
    return out


def render(rng: Rng, roadwork: bool | None = None) -> tuple[Image.Image, bool]:
    """One held-out-style street scene: (RGB image, is_roadwork)."""
    if roadwork is None:
        roadwork = bool(rng.random() < 0.5)
    v = _view(rng)
    p = Pic(v, np.zeros((v.h, v.w, 3), np.uint8))
    half, walk = rng.uniform(3.2, 7.5), rng.uniform(1.5, 4.0)
    _ground(p, rng, half, walk)
    _facades(p, rng, half, walk)
    if roadwork:
        _roadwork(p, rng, half)
    _clutter(p, rng, half, walk, roadwork)
    for _z, fn in sorted(p.todo, key=lambda t: -t[0]):
        fn()
    return Image.fromarray(_grade(rng, p.img), "RGB"), roadwork


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    labels = {}
    for i in range(a.n):
        img, rw = render(rng)
        img.save(a.out / f"{i:04d}.jpg", quality=92)
        labels[f"{i:04d}.jpg"] = rw
    (a.out / "labels.json").write_text(json.dumps(labels, indent=1) + "\n")
    print(f"wrote {a.n} scenes to {a.out}")


if __name__ == "__main__":
    main()
