"""Procedural synthetic street scenes for training a small YOLO roadwork detector.

Every scene is drawn with PIL from a pinhole camera model: a horizon at a random height, a road (lanes, markings,
shoulders, sidewalks) in perspective, buildings / trees / poles along it, traffic, pedestrians and road signs. Roadwork
scenes add a work zone (a lane closure taper, shoulder work, a closed road, sidewalk works, a few scattered devices, or
just signs) built from the nine detector classes; non-roadwork scenes contain none of them but do contain look-alikes
(orange / red cars, yellow taxis, red / blue / green / yellow signs, pedestrians, traffic lights, plain poles).

Labels are exact: every labelled object is also drawn, with its own id, into a mask, so a box is the tight box of the
object's *visible* pixels (after occlusion by nearer things and clipping at the image border). Objects less than a
quarter visible, or whose box is under 4 px on a side, get no label.

    python -m training.synth OUT_DIR --train 4000 --val 400 --seed 0
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from router.flow.verdict import OBJECT_TYPES

CLASSES: tuple[str, ...] = OBJECT_TYPES  # the verdict schema's object types (router/flow/verdict.py)
CONE, DRUM, BARRICADE, BARRIER, PANEL, ARROW_BOARD, WORK_SIGN, WORKER, WORK_VEHICLE = range(len(CLASSES))

Label = tuple[int, float, float, float, float]
RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]
Pt = tuple[float, float]
Rng = np.random.Generator

MIN_BOX_PX = 4
MIN_VISIBLE = 0.25  # fraction of an object's drawn pixels that must stay visible for it to get a label

# ---------------------------------------------------------------------------------------------------------- palettes
CONE_COLORS: tuple[RGB, ...] = ((255, 110, 20), (250, 90, 15), (240, 62, 30), (255, 132, 32), (235, 80, 20))
HIVIS: tuple[RGB, ...] = ((255, 120, 10), (250, 150, 25), (215, 245, 40), (200, 240, 60), (238, 255, 70))
REFLECTIVE: RGB = (215, 215, 210)
WHITE: RGB = (240, 240, 236)
BLACK: RGB = (22, 22, 24)
AMBER: RGB = (255, 188, 50)
WORK_VEHICLE_COLORS: tuple[RGB, ...] = ((240, 185, 20), (246, 204, 40), (240, 122, 20), (250, 142, 30), (236, 236, 230))
CAR_COLORS: tuple[RGB, ...] = (
    (236, 236, 236),
    (192, 194, 198),
    (40, 42, 46),
    (112, 114, 120),
    (30, 60, 130),
    (150, 25, 30),
    (20, 90, 60),
    (200, 190, 160),
    (90, 60, 40),
    (60, 120, 190),
    (20, 22, 24),
)
LOOKALIKE_CARS: tuple[RGB, ...] = ((232, 104, 30), (205, 45, 32), (244, 192, 22), (250, 140, 20))
CLOTHES: tuple[RGB, ...] = (
    (30, 35, 60),
    (60, 60, 66),
    (22, 22, 24),
    (228, 228, 228),
    (180, 170, 150),
    (90, 60, 45),
    (40, 70, 50),
    (110, 30, 40),
    (70, 90, 130),
    (150, 150, 155),
    (190, 120, 130),
    (40, 55, 90),
)
SKIN: tuple[RGB, ...] = ((240, 200, 170), (222, 172, 132), (182, 122, 90), (122, 82, 56), (88, 60, 42))
HAIR: tuple[RGB, ...] = ((20, 18, 16), (60, 40, 25), (110, 80, 45), (200, 170, 110), (150, 150, 150))
HELMETS: tuple[RGB, ...] = ((245, 245, 240), (250, 210, 20), (250, 130, 20), (40, 90, 200), (230, 40, 30))
BUILDING_COLORS: tuple[RGB, ...] = (
    (170, 90, 70),
    (200, 180, 150),
    (150, 150, 155),
    (225, 220, 205),
    (120, 110, 100),
    (180, 160, 120),
    (90, 100, 115),
    (210, 200, 185),
    (140, 70, 55),
    (100, 125, 140),
)
# domain randomization: device colours away from the usual safety orange (faded, red, amber, dirty)
DR_DEVICE_COLORS: tuple[RGB, ...] = ((225, 60, 40), (255, 160, 40), (205, 110, 70), (250, 120, 90), (190, 80, 30))
AWNING_COLORS: tuple[RGB, ...] = ((200, 30, 35), (240, 110, 20), (30, 110, 60), (30, 60, 140), (250, 170, 30))
GRASS: tuple[RGB, ...] = ((78, 120, 58), (100, 135, 62), (150, 150, 95), (120, 110, 80), (62, 100, 50), (140, 130, 100))
FOLIAGE: tuple[RGB, ...] = ((50, 95, 40), (70, 120, 50), (40, 75, 35), (95, 130, 55), (150, 120, 40), (60, 90, 60))


def _jit(rng: Rng, c: RGB, a: int = 12) -> RGB:
    d = rng.integers(-a, a + 1, 3)
    return (min(255, max(0, c[0] + int(d[0]))), min(255, max(0, c[1] + int(d[1]))), min(255, max(0, c[2] + int(d[2]))))


def _grey(rng: Rng, lo: int, hi: int, tint: int = 4) -> RGB:
    g = int(rng.integers(lo, hi + 1))
    d = rng.integers(-tint, tint + 1, 3)
    return (min(255, max(0, g + int(d[0]))), min(255, max(0, g + int(d[1]))), min(255, max(0, g + int(d[2]) + 2)))


def _mul(c: RGB, f: float) -> RGB:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (int(a[0] + (b[0] - a[0]) * t), int(a[1] + (b[1] - a[1]) * t), int(a[2] + (b[2] - a[2]) * t))


def _pick(rng: Rng, seq: Sequence[RGB], a: int = 12) -> RGB:
    return _jit(rng, seq[int(rng.integers(len(seq)))], a)


def _choice(rng: Rng, options: Sequence[str], p: Sequence[float] | None = None) -> str:
    if p is None:
        return options[int(rng.integers(len(options)))]
    return options[int(rng.choice(len(options), p=np.asarray(p) / np.sum(p)))]


def _clip(poly: Sequence[Pt], axis: int, lo: float, hi: float) -> list[Pt]:
    """Sutherland-Hodgman clip of a polygon to lo <= coord[axis] <= hi."""

    def one(pts: Sequence[Pt], bound: float, keep_ge: bool) -> list[Pt]:
        out: list[Pt] = []
        n = len(pts)
        for i in range(n):
            a, b = pts[i], pts[(i + 1) % n]
            ina = a[axis] >= bound if keep_ge else a[axis] <= bound
            inb = b[axis] >= bound if keep_ge else b[axis] <= bound
            if ina:
                out.append(a)
            if ina != inb:
                t = (bound - a[axis]) / (b[axis] - a[axis])
                out.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
        return out

    pts = one(poly, lo, True)
    return one(pts, hi, False) if pts else pts


# ------------------------------------------------------------------------------------------------- camera and canvas
@dataclass
class Cam:
    """Pinhole camera at height hc looking down the road; the road frame may curve (k), X is lateral, z is depth."""

    w: int
    h: int
    hz: float  # horizon row
    vx: float  # vanishing column
    f: float  # focal length in px
    hc: float  # camera height in m
    k: float  # road curvature

    def off(self, z: float) -> float:
        return self.k * z * z / (1.0 + z / 60.0)

    def p(self, x: float, y: float, z: float) -> Pt:
        return (self.vx + self.f * (x + self.off(z)) / z, self.hz + self.f * (self.hc - y) / z)

    @property
    def zmin(self) -> float:
        """Depth of the ground at the bottom image row."""
        return self.f * self.hc / (self.h - self.hz)

    def x_at(self, col: float, z: float) -> float:
        """Lateral position X whose ground point at depth z projects to image column col."""
        return (col - self.vx) * z / self.f - self.off(z)


class Canvas:
    """Draws on the image and, with the current object id, on the label mask (id 0 = unlabelled occluder)."""

    def __init__(self, img: Image.Image, cam: Cam, rng: Rng) -> None:
        self.img = img
        self.cam = cam
        self.rng = rng
        self.w, self.h = img.size
        self.d = ImageDraw.Draw(img)
        self.da = ImageDraw.Draw(img, "RGBA")
        self.mask = Image.new("L", img.size, 0)
        self.m = ImageDraw.Draw(self.mask)
        self.oid = 0
        self.light = 1.0  # +1: light from the left, right-hand sides are darker
        self.b = [math.inf, math.inf, -math.inf, -math.inf]

    def begin(self, oid: int) -> None:
        self.oid = oid
        self.b = [math.inf, math.inf, -math.inf, -math.inf]

    def _grow(self, xs: Sequence[float], ys: Sequence[float], pad: float = 0.0) -> None:
        if self.oid:
            b = self.b
            b[0] = min(b[0], min(xs) - pad)
            b[1] = min(b[1], min(ys) - pad)
            b[2] = max(b[2], max(xs) + pad)
            b[3] = max(b[3], max(ys) + pad)

    def bounds(self) -> tuple[int, int, int, int] | None:
        x0, y0 = max(0, int(self.b[0]) - 1), max(0, int(self.b[1]) - 1)
        x1, y1 = min(self.w, int(self.b[2]) + 2), min(self.h, int(self.b[3]) + 2)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def poly(self, pts: Sequence[Pt], fill: RGB) -> None:
        if len(pts) < 3:
            return
        self.d.polygon(pts, fill=fill)
        self.m.polygon(pts, fill=self.oid)
        self._grow([p[0] for p in pts], [p[1] for p in pts])

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self.d.rectangle(box, fill=fill)
        self.m.rectangle(box, fill=self.oid)
        self._grow((box[0], box[2]), (box[1], box[3]))

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: RGB) -> None:
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self.d.ellipse(box, fill=fill)
        self.m.ellipse(box, fill=self.oid)
        self._grow((box[0], box[2]), (box[1], box[3]))

    def line(self, pts: Sequence[Pt], fill: RGB, width: float) -> None:
        wd = max(1, round(width))
        self.d.line(pts, fill=fill, width=wd)
        self.m.line(pts, fill=self.oid, width=wd)
        self._grow([p[0] for p in pts], [p[1] for p in pts], wd / 2)

    def shade(self, pts: Sequence[Pt], rgba: RGBA) -> None:
        """Blended polygon on the image only (shading, shadows, haze)."""
        if len(pts) >= 3:
            self.da.polygon(pts, fill=rgba)


class BB:
    """A vertical plane facing the camera at ground point (X, z); local units are metres, u right and v up.

    fs < 1 foreshortens the width (the object is turned away from the camera)."""

    def __init__(self, cv: Canvas, x: float, z: float, fs: float = 1.0) -> None:
        self.cv = cv
        self.bx, self.by = cv.cam.p(x, 0.0, z)
        self.s = cv.cam.f / z
        self.su = self.s * fs

    def pt(self, u: float, v: float) -> Pt:
        return (self.bx + u * self.su, self.by - v * self.s)

    def poly(self, uv: Sequence[Pt], fill: RGB) -> None:
        self.cv.poly([(self.bx + u * self.su, self.by - v * self.s) for u, v in uv], fill)

    def rect(self, u0: float, v0: float, u1: float, v1: float, fill: RGB) -> None:
        su, s = self.su, self.s
        self.cv.rect(self.bx + u0 * su, self.by - v0 * s, self.bx + u1 * su, self.by - v1 * s, fill)

    def ellipse(self, u0: float, v0: float, u1: float, v1: float, fill: RGB) -> None:
        su, s = self.su, self.s
        self.cv.ellipse(self.bx + u0 * su, self.by - v0 * s, self.bx + u1 * su, self.by - v1 * s, fill)

    def line(self, uv: Sequence[Pt], fill: RGB, width_m: float) -> None:
        self.cv.line([(self.bx + u * self.su, self.by - v * self.s) for u, v in uv], fill, width_m * self.s)

    def shade(self, uv: Sequence[Pt], rgba: RGBA) -> None:
        self.cv.shade([(self.bx + u * self.su, self.by - v * self.s) for u, v in uv], rgba)

    def side_shade(self, half_w_bottom: float, half_w_top: float, v0: float, v1: float, alpha: int = 60) -> None:
        """Darken the half of a (tapered) upright body away from the light."""
        sg = self.cv.light
        self.shade(
            [
                (sg * half_w_bottom * 0.3, v0),
                (sg * half_w_bottom, v0),
                (sg * half_w_top, v1),
                (sg * half_w_top * 0.3, v1),
            ],
            (0, 0, 0, alpha),
        )


def _cuboid(
    cv: Canvas, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, front: RGB, side: RGB, top: RGB
) -> None:
    """An axis-aligned box in the road frame: the visible side, top and front (z0) faces."""
    cam = cv.cam
    z0 = max(z0, 0.5)
    zc = 0.5 * (z0 + z1)
    off = cam.off(zc)
    xs = x0 if x0 + off > 0 else (x1 if x1 + off < 0 else None)
    if xs is not None:
        cv.poly([cam.p(xs, y0, z0), cam.p(xs, y0, z1), cam.p(xs, y1, z1), cam.p(xs, y1, z0)], side)
    if y1 < cam.hc:
        cv.poly([cam.p(x0, y1, z0), cam.p(x1, y1, z0), cam.p(x1, y1, z1), cam.p(x0, y1, z1)], top)
    a, b = cam.p(x0, y0, z0), cam.p(x1, y1, z0)
    cv.rect(a[0], a[1], b[0], b[1], front)


def _side_quad(cv: Canvas, xs: float, ya: float, yb: float, za: float, zb: float, fill: RGB) -> None:
    cam = cv.cam
    cv.poly([cam.p(xs, ya, za), cam.p(xs, ya, zb), cam.p(xs, yb, zb), cam.p(xs, yb, za)], fill)


# ------------------------------------------------------------------------------------------------- roadwork objects
def draw_cone(
    cv: Canvas, x: float, z: float, *, h: float, color: RGB, bands: int, base: RGB, r0: float = 0.2, r1: float = 0.04
) -> None:
    """A traffic cone: square base, tapered body (radius r0 at the foot, r1 at the top, in units of h), 0-2 bands."""
    b = BB(cv, x, z)
    if h * b.s < 3:
        b.rect(-0.18 * h, 0, 0.18 * h, h, color)
        return
    cam = cv.cam
    wb, t = 0.6 * h, 0.05 * h
    cv.poly(
        [
            cam.p(x - wb / 2, t, z - wb / 2),
            cam.p(x + wb / 2, t, z - wb / 2),
            cam.p(x + wb / 2, t, z + wb / 2),
            cam.p(x - wb / 2, t, z + wb / 2),
        ],
        base,
    )
    BB(cv, x, z - wb / 2).rect(-wb / 2, 0, wb / 2, t, _mul(base, 0.7))
    r0, r1 = r0 * h, r1 * h

    def hw(v: float) -> float:
        return r0 + (r1 - r0) * (v - t) / (h - t)

    b.poly([(-r0, t), (r0, t), (r1, h), (-r1, h)], color)
    spans = {0: (), 1: ((0.5, 0.64),)}.get(bands, ((0.34, 0.46), (0.6, 0.72)))
    for f0, f1 in spans:
        v0, v1 = t + f0 * (h - t), t + f1 * (h - t)
        b.poly([(-hw(v0), v0), (hw(v0), v0), (hw(v1), v1), (-hw(v1), v1)], WHITE)
    b.side_shade(r0, r1, t, h, 55)


def draw_drum(cv: Canvas, x: float, z: float, *, h: float, w: float, color: RGB, nb: int) -> None:
    b = BB(cv, x, z)
    b.poly([(-0.64 * w, 0), (0.64 * w, 0), (0.56 * w, 0.1 * h), (-0.56 * w, 0.1 * h)], BLACK)
    v0 = 0.08 * h
    bh = (h - v0) / nb
    for i in range(nb):
        b.rect(-w / 2, v0 + i * bh, w / 2, v0 + (i + 1) * bh, color if (nb - i) % 2 else WHITE)
    e = 0.5 * w * max(0.0, cv.cam.hc - h) / z
    if e * b.s >= 1:
        b.ellipse(-w / 2, h - e, w / 2, h + e, _mul(color, 0.8))
    b.rect(-0.12 * w, h, 0.12 * w, h + 0.05 * h + e, _mul(color, 0.7))  # handle
    b.side_shade(w / 2, w / 2, v0, h, 60)
    sg = -cv.light
    b.shade([(sg * 0.15 * w, v0), (sg * 0.3 * w, v0), (sg * 0.3 * w, h), (sg * 0.15 * w, h)], (255, 255, 255, 45))


def _stripes_h(
    b: BB, u0: float, u1: float, v0: float, v1: float, period: float, color: RGB, d: float, chevron: bool
) -> None:
    """Diagonal stripes over the board [u0,u1]x[v0,v1] (d = +1 / -1 slant; chevron mirrors the right half)."""
    bh = v1 - v0
    sw = period / 2
    a = u0 - bh - period
    mid = 0.5 * (u0 + u1)
    while a < u1 + bh:
        dd = -d if chevron and a + sw / 2 > mid else d
        para = [(a, v0), (a + sw, v0), (a + sw + dd * bh, v1), (a + dd * bh, v1)]
        lo, hi = (u0, mid) if chevron and dd == d else (u0, u1)
        if chevron and dd != d:
            lo, hi = mid, u1
        pts = _clip(para, 0, lo, hi)
        if len(pts) >= 3:
            b.poly(pts, color)
        a += period


def draw_barricade(
    cv: Canvas,
    x: float,
    z: float,
    *,
    w: float,
    h: float,
    nb: int,
    fs: float,
    stripe: RGB,
    leg: RGB,
    closed_panel: bool,
    lamp: bool,
) -> None:
    b = BB(cv, x, z, fs)
    bh = min(0.3, 0.7 * h / nb)
    gap = (h - 0.3 - nb * bh) / max(1, nb - 1) if nb > 1 else 0.0
    for u in (-(w / 2 - 0.12), w / 2 - 0.12):
        b.rect(u - 0.22, 0, u + 0.22, 0.05, BLACK)
        b.rect(u - 0.035, 0, u + 0.035, h, leg)
    d = 1.0 if cv.rng.random() < 0.5 else -1.0
    chevron = bool(cv.rng.random() < 0.3)
    for i in range(nb):
        v1 = h - i * (bh + gap)
        v0 = v1 - bh
        b.rect(-w / 2, v0, w / 2, v1, WHITE)
        _stripes_h(b, -w / 2, w / 2, v0, v1, 0.3 + 0.1 * (1 - fs), stripe, d, chevron)
    if closed_panel and nb >= 2:
        pw, ph = min(0.9, 0.5 * w), 0.45
        b.rect(-pw / 2, h - ph - 0.05, pw / 2, h - 0.05, BLACK)
        b.rect(-pw / 2 + 0.03, h - ph - 0.02, pw / 2 - 0.03, h - 0.08, WHITE)
        for k in range(2):
            vv = h - 0.15 - k * 0.17
            b.rect(-pw * 0.38, vv - 0.06, pw * 0.38, vv, BLACK)
    if lamp:
        u = w / 2 - 0.12
        b.rect(u - 0.02, h, u + 0.02, h + 0.12, BLACK)
        b.ellipse(u - 0.09, h + 0.1, u + 0.09, h + 0.28, AMBER)
    b.shade([(-w / 2, 0), (w / 2, 0), (w / 2, h), (-w / 2, h)], (0, 0, 0, int(80 * (1 - fs))))


def draw_panel(
    cv: Canvas, x: float, z: float, *, pw: float, ph: float, vb: float, stripe: RGB, fs: float, lamp: bool
) -> None:
    b = BB(cv, x, z, fs)
    b.poly([(-0.28, 0), (0.28, 0), (0.2, 0.1), (-0.2, 0.1)], BLACK if cv.rng.random() < 0.7 else stripe)
    b.rect(-0.025, 0.08, 0.025, vb, (120, 120, 120))
    b.rect(-pw / 2, vb, pw / 2, vb + ph, WHITE)
    period = 0.2
    c = vb - pw - period
    while c < vb + ph:
        para = [(-pw / 2, c), (pw / 2, c + pw), (pw / 2, c + pw + period / 2), (-pw / 2, c + period / 2)]
        pts = _clip(para, 1, vb, vb + ph)
        if len(pts) >= 3:
            b.poly(pts, stripe)
        c += period
    if lamp:
        b.ellipse(-0.08, vb + ph, 0.08, vb + ph + 0.16, AMBER)


ARROWS: dict[str, list[tuple[Pt, Pt]]] = {
    "right": [((-0.42, 0.0), (0.4, 0.0)), ((0.4, 0.0), (0.12, 0.36)), ((0.4, 0.0), (0.12, -0.36))],
    "left": [((0.42, 0.0), (-0.4, 0.0)), ((-0.4, 0.0), (-0.12, 0.36)), ((-0.4, 0.0), (-0.12, -0.36))],
    "both": [
        ((-0.4, 0.0), (0.4, 0.0)),
        ((0.4, 0.0), (0.2, 0.34)),
        ((0.4, 0.0), (0.2, -0.34)),
        ((-0.4, 0.0), (-0.2, 0.34)),
        ((-0.4, 0.0), (-0.2, -0.34)),
    ],
    "chevron": [((a, 0.3), (a + 0.22, 0.0)) for a in (-0.4, -0.1, 0.2)]
    + [((a, -0.3), (a + 0.22, 0.0)) for a in (-0.4, -0.1, 0.2)],
    "bar": [((-0.42, 0.0), (0.42, 0.0))],
}


def draw_arrow_board(
    cv: Canvas,
    x: float,
    z: float,
    *,
    w: float,
    vb: float,
    fs: float,
    pattern: str,
    trailer: RGB,
    lit: bool,
    mounted: bool,
) -> None:
    b = BB(cv, x, z, fs)
    bh = 0.5 * w
    if not mounted:
        b.poly([(0.0, 0.62), (0.15, 0.62), (0.05, 0.1), (-0.05, 0.1)], (70, 70, 70))  # jack stand
        b.rect(-0.8, 0.4, 0.8, 1.05, trailer)
        b.rect(-0.8, 0.4, 0.8, 0.5, _mul(trailer, 0.6))
        for u in (-0.82, 0.52):
            b.ellipse(u, 0.0, u + 0.3, 0.58, BLACK)
        b.rect(-0.06, 1.0, 0.06, vb, (90, 90, 90))
    b.rect(-w / 2, vb, w / 2, vb + bh, (58, 58, 60))
    b.rect(-w / 2 + 0.05, vb + 0.05, w / 2 - 0.05, vb + bh - 0.05, (24, 24, 26))
    lamp = AMBER if lit else (105, 92, 52)
    cu, cv_, sx, sy = 0.0, vb + bh / 2, w * 0.9, bh * 0.8
    spacing = bh * 0.11
    if spacing * b.su < 2.5:  # too small for separate lamps: draw the arrow as strokes
        for (ax, ay), (ex, ey) in ARROWS[pattern]:
            b.line([(cu + ax * sx, cv_ + ay * sy), (cu + ex * sx, cv_ + ey * sy)], lamp, spacing * 0.9)
        return
    r = spacing * 0.38
    for (ax, ay), (ex, ey) in ARROWS[pattern]:
        length = math.hypot((ex - ax) * sx, (ey - ay) * sy)
        n = max(1, int(length / spacing))
        for i in range(n + 1):
            t = i / n
            u, v = cu + (ax + (ex - ax) * t) * sx, cv_ + (ay + (ey - ay) * t) * sy
            b.ellipse(u - r, v - r, u + r, v + r, lamp)


def _glyph(b: BB, kind: str, cx: float, cy: float, r: float) -> None:
    """A black pictogram of scale r centred on (cx, cy) in the billboard's local units."""
    lw = 0.085 * r
    if kind == "worker":
        b.ellipse(cx - 0.22 * r, cy + 0.24 * r, cx - 0.04 * r, cy + 0.42 * r, BLACK)
        b.line([(cx - 0.15 * r, cy + 0.22 * r), (cx + 0.02 * r, cy - 0.18 * r)], BLACK, lw * 1.4)
        b.line([(cx + 0.02 * r, cy - 0.18 * r), (cx - 0.12 * r, cy - 0.5 * r)], BLACK, lw)
        b.line([(cx + 0.02 * r, cy - 0.18 * r), (cx + 0.16 * r, cy - 0.5 * r)], BLACK, lw)
        b.line([(cx - 0.1 * r, cy + 0.1 * r), (cx + 0.3 * r, cy - 0.3 * r)], BLACK, lw)
        b.poly([(cx + 0.2 * r, cy - 0.55 * r), (cx + 0.5 * r, cy - 0.55 * r), (cx + 0.35 * r, cy - 0.36 * r)], BLACK)
    elif kind == "text":
        for dy, ww in ((0.22, 0.55), (0.0, 0.75), (-0.22, 0.55)):
            b.rect(cx - ww * r, cy + dy * r - 0.06 * r, cx + ww * r, cy + dy * r + 0.06 * r, BLACK)
    elif kind == "arrow":
        b.line([(cx - 0.1 * r, cy - 0.5 * r), (cx - 0.1 * r, cy + 0.05 * r), (cx + 0.25 * r, cy + 0.35 * r)], BLACK, lw)
        b.poly([(cx + 0.38 * r, cy + 0.48 * r), (cx + 0.12 * r, cy + 0.45 * r), (cx + 0.3 * r, cy + 0.22 * r)], BLACK)
    elif kind == "flagger":
        b.ellipse(cx - 0.09 * r, cy + 0.28 * r, cx + 0.09 * r, cy + 0.46 * r, BLACK)
        b.line([(cx, cy + 0.26 * r), (cx, cy - 0.15 * r)], BLACK, lw * 1.5)
        b.line([(cx, cy - 0.15 * r), (cx - 0.12 * r, cy - 0.5 * r)], BLACK, lw)
        b.line([(cx, cy - 0.15 * r), (cx + 0.12 * r, cy - 0.5 * r)], BLACK, lw)
        b.line([(cx, cy + 0.15 * r), (cx + 0.3 * r, cy + 0.3 * r)], BLACK, lw * 0.7)
        b.poly([(cx + 0.3 * r, cy + 0.3 * r), (cx + 0.5 * r, cy + 0.28 * r), (cx + 0.42 * r, cy + 0.1 * r)], BLACK)
    else:  # lane ends
        b.line([(cx - 0.25 * r, cy - 0.5 * r), (cx - 0.25 * r, cy + 0.45 * r)], BLACK, lw)
        b.line([(cx + 0.25 * r, cy - 0.5 * r), (cx + 0.25 * r, cy), (cx - 0.1 * r, cy + 0.4 * r)], BLACK, lw)


def draw_work_sign(
    cv: Canvas,
    x: float,
    z: float,
    *,
    a: float,
    fs: float,
    vb: float,
    stand: bool,
    glyph: str,
    color: RGB,
    triangle: bool,
) -> None:
    b = BB(cv, x, z, fs)
    r = a * 0.7071
    oid, cv.oid = cv.oid, 0  # the post / stand is not part of the label
    if stand:
        for du in (-0.45, 0.45):
            b.line([(0.0, vb + 0.1), (du, 0.0)], (60, 60, 60), 0.035)
        b.line([(0.0, vb + 0.1), (0.0, 0.0)], (60, 60, 60), 0.035)
    else:
        b.rect(-0.035, 0.0, 0.035, vb + r, (150, 150, 150) if cv.rng.random() < 0.7 else (110, 80, 50))
    cv.oid = oid
    if triangle:
        s = 1.1 * r
        b.poly([(-s, vb), (s, vb), (0.0, vb + 1.75 * s)], (205, 25, 30))
        b.poly([(-0.72 * s, vb + 0.16 * s), (0.72 * s, vb + 0.16 * s), (0.0, vb + 1.4 * s)], color)
        _glyph(b, "worker", 0.0, vb + 0.55 * s, 0.55 * s)
    else:
        cy = vb + r
        b.poly([(0.0, cy - r), (r, cy), (0.0, cy + r), (-r, cy)], BLACK)
        q = 0.9 * r
        b.poly([(0.0, cy - q), (q, cy), (0.0, cy + q), (-q, cy)], color)
        _glyph(b, glyph, 0.0, cy, 0.62 * r)
    if stand and cv.rng.random() < 0.6:
        for du in (-1.0, 1.0):
            top = (du * 0.25 * r, vb + 2.0 * r if not triangle else vb + 1.9 * r)
            b.poly([top, (top[0] + du * 0.22, top[1] - 0.08), (top[0], top[1] - 0.2)], (250, 100, 20))


def draw_person(
    cv: Canvas,
    x: float,
    z: float,
    *,
    h: float,
    worker: bool,
    shirt: RGB,
    pants: RGB,
    skin: RGB,
    hair: RGB,
    vest: RGB,
    helmet: RGB,
    pose: str,
    sleeves_vest: bool,
) -> None:
    b = BB(cv, x, z)
    if h * b.s < 5:
        b.rect(-0.12 * h, 0, 0.12 * h, h, vest if worker else shirt)
        return
    H = h
    feet = (-0.1, 0.1) if pose == "walk" else (-0.055, 0.055)
    for sg, foot in zip((-1.0, 1.0), feet, strict=True):
        b.poly(
            [
                (sg * 0.11 * H, 0.48 * H),
                (sg * 0.005 * H, 0.48 * H),
                (foot * H - sg * 0.04 * H, 0.03 * H),
                (foot * H + sg * 0.045 * H, 0.03 * H),
            ],
            pants,
        )
        b.rect(foot * H - 0.055 * H, 0.0, foot * H + 0.055 * H, 0.035 * H, BLACK)
    torso = [
        (-0.115 * H, 0.47 * H),
        (0.115 * H, 0.47 * H),
        (0.13 * H, 0.79 * H),
        (0.09 * H, 0.82 * H),
        (-0.09 * H, 0.82 * H),
        (-0.13 * H, 0.79 * H),
    ]
    b.poly(torso, shirt)
    sleeve = vest if worker and sleeves_vest else shirt
    hands: list[Pt] = []
    for sg in (-1.0, 1.0):
        sh = (sg * 0.115 * H, 0.79 * H)
        if pose == "paddle" and sg > 0:
            el, hd = (0.2 * H, 0.68 * H), (0.22 * H, 0.78 * H)
        elif pose == "shovel" and sg > 0:
            el, hd = (0.2 * H, 0.64 * H), (0.26 * H, 0.56 * H)
        elif pose == "wave" and sg < 0:
            el, hd = (-0.22 * H, 0.86 * H), (-0.26 * H, 1.0 * H)
        else:
            el, hd = (sg * 0.15 * H, 0.63 * H), (sg * 0.16 * H, 0.48 * H)
        b.line([sh, el, hd], sleeve, 0.07 * H)
        hands.append(hd)
    if worker:
        b.poly(
            [
                (-0.115 * H, 0.5 * H),
                (0.115 * H, 0.5 * H),
                (0.128 * H, 0.79 * H),
                (0.06 * H, 0.815 * H),
                (0.0, 0.72 * H),
                (-0.06 * H, 0.815 * H),
                (-0.128 * H, 0.79 * H),
            ],
            vest,
        )
        for v in (0.55, 0.625):
            b.rect(-0.117 * H, v * H, 0.117 * H, (v + 0.025) * H, REFLECTIVE)
        for u in (-0.07, 0.045):
            b.rect(u * H, 0.65 * H, (u + 0.025) * H, 0.805 * H, REFLECTIVE)
    for hd in hands:
        b.ellipse(hd[0] - 0.03 * H, hd[1] - 0.03 * H, hd[0] + 0.03 * H, hd[1] + 0.03 * H, skin)
    b.rect(-0.03 * H, 0.8 * H, 0.03 * H, 0.86 * H, skin)
    b.ellipse(-0.06 * H, 0.85 * H, 0.06 * H, 0.99 * H, skin)
    if worker:
        b.ellipse(-0.068 * H, 0.925 * H, 0.068 * H, 1.03 * H, helmet)
        b.rect(-0.085 * H, 0.925 * H, 0.085 * H, 0.945 * H, helmet)
    else:
        b.ellipse(-0.063 * H, 0.925 * H, 0.063 * H, 1.0 * H, hair)
    hx, hy = hands[1]
    if pose == "paddle":
        b.line([(hx, hy - 0.05 * H), (hx, hy + 0.3 * H)], (80, 80, 80), 0.02 * H)
        rr = 0.1 * H
        cy = hy + 0.3 * H + rr
        octo = [
            (hx + rr * math.cos(math.pi / 8 + k * math.pi / 4), cy + rr * math.sin(math.pi / 8 + k * math.pi / 4))
            for k in range(8)
        ]
        if cv.rng.random() < 0.5:
            b.poly(octo, (210, 25, 30))
            b.rect(hx - 0.6 * rr, cy - 0.15 * rr, hx + 0.6 * rr, cy + 0.15 * rr, WHITE)
        else:
            b.poly([(hx, cy - rr), (hx + rr, cy), (hx, cy + rr), (hx - rr, cy)], (250, 130, 20))
    elif pose == "shovel":
        b.line([(hx, hy), (hx + 0.25 * H, 0.02 * H)], (110, 80, 50), 0.02 * H)
        b.poly(
            [(hx + 0.2 * H, 0.0), (hx + 0.32 * H, 0.0), (hx + 0.3 * H, 0.08 * H), (hx + 0.22 * H, 0.08 * H)],
            (70, 70, 75),
        )
    b.side_shade(0.12 * H, 0.12 * H, 0.47 * H, 0.82 * H, 45)


def draw_work_vehicle(cv: Canvas, x: float, z: float, *, kind: str, color: RGB, away: bool, fs: float) -> None:
    rng = cv.rng
    cam = cv.cam
    glass = _jit(rng, (45, 60, 75), 10)
    dark = (35, 35, 38)
    if kind in ("truck", "pickup", "tma"):
        W = 2.45 if kind != "pickup" else 1.95
        hb = rng.uniform(2.4, 3.1) if kind != "pickup" else 1.1
        hcab = rng.uniform(2.6, 3.0) if kind != "pickup" else 1.85
        lb = rng.uniform(4.0, 6.0) if kind != "pickup" else 1.9
        lc = 2.2 if kind != "pickup" else 2.6
        side = _mul(color, 0.8)
        top = _mul(color, 0.92)
        if away:
            zc0 = z + lb
            _cuboid(cv, x - W / 2, x + W / 2, 0.9, hcab, zc0, zc0 + lc, color, side, top)
            _cuboid(cv, x - W / 2, x + W / 2, 0.9, hb, z, zc0, color, side, top if kind != "truck" else dark)
            f = BB(cv, x, z)
            for u in (-W / 2 + 0.05, W / 2 - 0.55):
                f.rect(u, 0.0, u + 0.5, 1.0, BLACK)
            f.rect(-W / 2 + 0.55, 0.35, W / 2 - 0.55, 0.9, dark)
            for u in (-W / 2 + 0.1, W / 2 - 0.35):
                f.rect(u, 1.0, u + 0.25, 1.2, (200, 30, 30))
            if kind == "tma" or rng.random() < 0.4:
                _stripes_h(
                    f, -W / 2, W / 2, 1.05, hb, 0.5, (250, 110, 20) if rng.random() < 0.6 else (210, 30, 30), 1.0, True
                )
            if kind == "tma":
                _cuboid(cv, x - 1.0, x + 1.0, 0.55, 1.65, z - 1.6, z, WHITE, (200, 200, 200), (220, 220, 220))
                t = BB(cv, x, z - 1.6)
                _stripes_h(
                    t, -1.0, 1.0, 0.55, 1.65, 0.55, (245, 200, 20) if rng.random() < 0.5 else (250, 110, 20), 1.0, True
                )
            roof, rz = hcab, zc0 + 0.3
        else:
            zb0 = z + lc
            _cuboid(cv, x - W / 2, x + W / 2, 0.9, hb, zb0, zb0 + lb, color, side, top if kind != "truck" else dark)
            _cuboid(cv, x - W / 2, x + W / 2, 0.6, hcab, z, zb0, color, side, top)
            f = BB(cv, x, z)
            f.rect(-W / 2 + 0.15, hcab * 0.58, W / 2 - 0.15, hcab - 0.15, glass)
            f.rect(-W / 2 + 0.4, 0.75, W / 2 - 0.4, 1.2, dark)
            for u in (-W / 2 + 0.1, W / 2 - 0.4):
                f.rect(u, 0.85, u + 0.3, 1.05, (250, 250, 220))
            for u in (-W / 2 + 0.05, W / 2 - 0.5):
                f.rect(u, 0.0, u + 0.45, 0.75, BLACK)
            roof, rz = hcab, z + 0.3
        if roof < cam.hc + 3:
            bz = BB(cv, x, rz)
            if kind == "pickup" or rng.random() < 0.5:
                bz.rect(-0.6 * W / 2, roof, 0.6 * W / 2, roof + 0.15, AMBER)
            else:
                for u in (-0.7, 0.7):
                    bz.ellipse(u - 0.13, roof, u + 0.13, roof + 0.25, AMBER)
        if rng.random() < 0.5 and kind != "tma":  # orange / white stripe along the side
            xs = x - W / 2 if x + cam.off(z) > 0 else x + W / 2
            z0, z1 = (z, z + lb + lc)
            _side_quad(cv, xs, 1.3, 1.55, z0, z1, (250, 120, 20) if color[2] > 150 else WHITE)
        return
    b = BB(cv, x, z, fs)
    d = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "excavator":
        b.poly([(-2.2, 0.1), (-1.9, 0.0), (1.9, 0.0), (2.2, 0.1), (2.2, 0.75), (-2.2, 0.75)], (40, 40, 42))
        for k in range(6):
            u = -1.75 + k * 0.7
            b.ellipse(u - 0.18, 0.16, u + 0.18, 0.52, (90, 90, 90))
        b.rect(-0.7, 0.75, 0.7, 1.05, (60, 60, 60))
        b.rect(-1.6 * d, 1.05, 1.5 * d, 2.1, color)
        b.rect(-1.6 * d, 1.05, -1.2 * d, 2.0, _mul(color, 0.8))  # counterweight
        b.rect(0.1 * d, 2.1, 1.3 * d, 3.2, color)  # cab
        b.rect(0.2 * d, 2.25, 1.2 * d, 3.05, glass)
        boom = [(0.9 * d, 1.6), (1.3 * d, 2.0), (3.0 * d, 3.9), (3.3 * d, 3.6), (1.6 * d, 1.6)]
        b.poly(boom, color)
        b.poly([(3.0 * d, 3.9), (3.3 * d, 3.6), (4.3 * d, 1.2), (4.0 * d, 1.1)], color)
        b.poly([(4.0 * d, 1.1), (4.45 * d, 1.3), (4.6 * d, 0.5), (3.9 * d, 0.35)], (70, 70, 70))
        b.line([(1.2 * d, 2.0), (2.6 * d, 3.3)], (90, 90, 90), 0.12)
    elif kind == "roller":
        b.rect(-1.6 * d, 0.45, 1.0 * d, 1.5, color)
        b.ellipse(0.6 * d, 0.0, 2.2 * d, 1.4, (70, 70, 72))
        b.ellipse(0.8 * d, 0.12, 2.0 * d, 1.28, (110, 110, 112))
        b.rect(0.7 * d, 1.25, 2.2 * d, 1.45, color)
        b.ellipse(-1.8 * d, 0.0, -0.8 * d, 1.0, BLACK)
        for u in (-1.3, 0.4):
            b.rect(u * d, 1.5, (u + 0.08) * d, 3.0, (40, 40, 40))
        b.rect(-1.5 * d, 2.95, 0.6 * d, 3.15, color)
        b.rect(-0.9 * d, 1.5, -0.2 * d, 2.1, (50, 50, 50))  # seat
    else:  # wheel loader
        b.rect(-2.0 * d, 0.7, 0.9 * d, 1.9, color)
        b.rect(-1.4 * d, 1.9, -0.2 * d, 3.2, color)
        b.rect(-1.3 * d, 2.05, -0.3 * d, 3.05, glass)
        for u in (-1.4, 0.6):
            b.ellipse((u - 0.65) * d, 0.0, (u + 0.65) * d, 1.3, BLACK)
            b.ellipse((u - 0.3) * d, 0.35, (u + 0.3) * d, 0.95, (160, 160, 150))
        b.line([(0.6 * d, 1.5), (1.9 * d, 1.0)], color, 0.3)
        b.poly([(1.8 * d, 0.2), (2.8 * d, 0.15), (2.9 * d, 1.4), (2.2 * d, 1.6)], (80, 80, 80))
    b.ellipse(-0.5 * d - 0.14, 3.18, -0.5 * d + 0.14, 3.42, AMBER)


def draw_barrier_run(
    cv: Canvas,
    x: float,
    z: float,
    *,
    length: float,
    h: float,
    wb: float,
    tw: float,
    color: RGB,
    along: bool,
    concrete: bool,
    stripe: bool,
) -> None:
    """One jersey-barrier segment, either along the road (from z to z + length) or across it (centred on x)."""
    cam = cv.cam
    side_c = _mul(color, 0.82)
    top_c = _mul(color, 1.08)
    hk = 0.3 * h if concrete else 0.18 * h
    if along:
        z1, z2 = z, z + length
        sg = -1.0 if x + cam.off(z) > 0 else 1.0
        xb, xk, xt = x + sg * wb / 2, x + sg * (wb / 2 - 0.04), x + sg * tw / 2
        _side_quad(cv, xb, 0.0, hk, z1, z2, side_c)
        cv.poly([cam.p(xk, hk, z1), cam.p(xk, hk, z2), cam.p(xt, h, z2), cam.p(xt, h, z1)], _mul(color, 0.92))
        if h < cam.hc:
            cv.poly(
                [
                    cam.p(x - tw / 2, h, z1),
                    cam.p(x + tw / 2, h, z1),
                    cam.p(x + tw / 2, h, z2),
                    cam.p(x - tw / 2, h, z2),
                ],
                top_c,
            )
        if stripe:
            _side_quad(cv, x + sg * (tw / 2 + 0.03), h - 0.25, h - 0.12, z1, z2, (250, 200, 20) if concrete else WHITE)
        b = BB(cv, x, z1)
        b.poly([(-wb / 2, 0), (wb / 2, 0), (wb / 2 - 0.04, hk), (tw / 2, h), (-tw / 2, h), (-wb / 2 + 0.04, hk)], color)
        if not concrete:
            b.ellipse(-tw / 2, h - 0.08, tw / 2, h + 0.08, color)
        b.shade([(-wb / 2, 0), (wb / 2, 0), (wb / 2, 0.04), (-wb / 2, 0.04)], (0, 0, 0, 90))
    else:
        L = length
        zf = z - wb / 2
        f = BB(cv, x, zf)
        f.rect(-L / 2, 0.0, L / 2, hk, side_c)
        cv.poly(
            [
                cam.p(x - L / 2, hk, zf + 0.04),
                cam.p(x + L / 2, hk, zf + 0.04),
                cam.p(x + L / 2, h, z - tw / 2),
                cam.p(x - L / 2, h, z - tw / 2),
            ],
            color,
        )
        if h < cam.hc:
            cv.poly(
                [
                    cam.p(x - L / 2, h, z - tw / 2),
                    cam.p(x + L / 2, h, z - tw / 2),
                    cam.p(x + L / 2, h, z + tw / 2),
                    cam.p(x - L / 2, h, z + tw / 2),
                ],
                top_c,
            )
        if stripe:
            g = BB(cv, x, z - tw / 2 - 0.05)
            g.rect(-L / 2, h - 0.25, L / 2, h - 0.12, (250, 200, 20) if concrete else WHITE)
        if not concrete:
            g = BB(cv, x, z - tw / 2)
            for k in range(3):
                u = -L / 2 + (k + 0.5) * L / 3
                g.ellipse(u - 0.2, h - 0.07, u + 0.2, h + 0.07, color)


# ------------------------------------------------------------------------------------------------------ distractors
def draw_car(cv: Canvas, x: float, z: float, *, kind: str, color: RGB, away: bool, taxi: bool) -> None:
    dims = {
        "sedan": (1.8, 4.5, 1.45),
        "suv": (1.92, 4.7, 1.75),
        "van": (2.0, 5.2, 2.3),
        "bus": (2.55, 11.0, 3.2),
        "box": (2.45, 7.0, 3.4),
    }
    W, L, H = dims[kind]
    side, top = _mul(color, 0.8), _mul(color, 0.95)
    glass = (40, 52, 64)
    rng = cv.rng
    if kind in ("sedan", "suv"):
        hl = 0.55 * H if kind == "sedan" else 0.6 * H
        _cuboid(cv, x - W / 2 + 0.12, x + W / 2 - 0.12, hl, H, z + 0.9, z + L - 0.9, glass, glass, top)
        _cuboid(cv, x - W / 2, x + W / 2, 0.3, hl + 0.02, z, z + L, color, side, top)
        cab = BB(cv, x, z + 0.9)
        cab.rect(-W / 2 + 0.12, H - 0.08, W / 2 - 0.12, H, top)
        if taxi:
            cab2 = BB(cv, x, z + 0.5 * L)
            cab2.rect(-0.35, H, 0.35, H + 0.22, (250, 240, 180))
    else:
        _cuboid(cv, x - W / 2, x + W / 2, 0.3, H, z, z + L, color, side, top)
        f = BB(cv, x, z)
        if kind == "bus":
            f.rect(-W / 2 + 0.15, 1.4, W / 2 - 0.15, H - 0.3, glass)
            cam = cv.cam
            xs = x - W / 2 if x + cam.off(z) > 0 else x + W / 2
            _side_quad(cv, xs, 1.5, H - 0.4, z + 0.5, z + L - 0.5, glass)
        elif kind == "van" and not away:
            f.rect(-W / 2 + 0.12, 1.25, W / 2 - 0.12, H - 0.2, glass)
    f = BB(cv, x, z)
    for u in (-W / 2 + 0.08, W / 2 - 0.33):
        f.rect(u, 0.0, u + 0.25, 0.42, BLACK)
    lamp = (200, 25, 25) if away else (250, 250, 225)
    lv = 0.75 if kind in ("sedan", "suv") else 0.9
    for u in (-W / 2 + 0.06, W / 2 - 0.36):
        f.rect(u, lv, u + 0.3, lv + 0.14, lamp)
    f.rect(-0.26, 0.42, 0.26, 0.56, (235, 235, 225) if rng.random() < 0.7 else (245, 200, 30))
    f.side_shade(W / 2, W / 2, 0.3, H, 30)


def draw_road_sign(cv: Canvas, x: float, z: float, *, kind: str, size: float, vc: float, fs: float) -> None:
    b = BB(cv, x, z, fs)
    r = size / 2
    post = (150, 150, 150)
    if kind == "green_rect":
        for u in (-1.1 * r, 1.1 * r):
            b.rect(u - 0.04, 0, u + 0.04, vc, post)
    else:
        b.rect(-0.035, 0, 0.035, vc, post)
    red, blue = (200, 22, 32), (25, 70, 170)
    if kind == "stop":
        pts = [
            (r * math.cos(math.pi / 8 + k * math.pi / 4), vc + r * math.sin(math.pi / 8 + k * math.pi / 4))
            for k in range(8)
        ]
        b.poly(pts, WHITE)
        b.poly([(0.9 * u, vc + 0.9 * (v - vc)) for u, v in pts], red)
        b.rect(-0.6 * r, vc - 0.13 * r, 0.6 * r, vc + 0.13 * r, WHITE)
    elif kind in ("speed", "noentry", "blue_circle"):
        b.ellipse(-r, vc - r, r, vc + r, red if kind != "blue_circle" else WHITE)
        inner = WHITE if kind == "speed" else (red if kind == "noentry" else blue)
        b.ellipse(-0.8 * r, vc - 0.8 * r, 0.8 * r, vc + 0.8 * r, inner)
        if kind == "speed":
            for u in (-0.32, 0.08):
                b.rect(u * r, vc - 0.4 * r, (u + 0.24) * r, vc + 0.4 * r, BLACK)
        elif kind == "noentry":
            b.rect(-0.6 * r, vc - 0.15 * r, 0.6 * r, vc + 0.15 * r, WHITE)
        else:
            b.line([(0.0, vc - 0.5 * r), (0.0, vc + 0.3 * r)], WHITE, 0.15 * r)
            b.poly([(-0.35 * r, vc + 0.2 * r), (0.35 * r, vc + 0.2 * r), (0.0, vc + 0.6 * r)], WHITE)
    elif kind == "blue_rect":
        b.rect(-r, vc - r, r, vc + r, blue)
        b.rect(-0.3 * r, vc - 0.6 * r, -0.1 * r, vc + 0.6 * r, WHITE)
        b.rect(-0.3 * r, vc + 0.1 * r, 0.35 * r, vc + 0.6 * r, WHITE)
        b.rect(-0.1 * r, vc + 0.25 * r, 0.15 * r, vc + 0.45 * r, blue)
    elif kind == "green_rect":
        b.rect(-1.5 * r, vc - 0.6 * r, 1.5 * r, vc + 0.8 * r, (20, 110, 60))
        for k in range(2):
            vv = vc + 0.45 * r - k * 0.5 * r
            b.rect(-1.1 * r, vv - 0.12 * r, (0.4 + 0.5 * k) * r, vv + 0.12 * r, WHITE)
    elif kind == "yield":
        b.poly([(-r, vc + 0.6 * r), (r, vc + 0.6 * r), (0.0, vc - 1.1 * r)], red)
        b.poly([(-0.62 * r, vc + 0.4 * r), (0.62 * r, vc + 0.4 * r), (0.0, vc - 0.68 * r)], WHITE)
    elif kind == "yellow_diamond":
        b.poly([(0.0, vc - r), (r, vc), (0.0, vc + r), (-r, vc)], BLACK)
        q = 0.9 * r
        b.poly([(0.0, vc - q), (q, vc), (0.0, vc + q), (-q, vc)], (250, 214, 10))
        if cv.rng.random() < 0.5:
            b.line([(-0.1 * r, vc - 0.5 * r), (-0.1 * r, vc), (0.25 * r, vc + 0.3 * r)], BLACK, 0.1 * r)
        else:
            b.ellipse(-0.1 * r, vc + 0.25 * r, 0.1 * r, vc + 0.45 * r, BLACK)
            b.line([(0.0, vc + 0.2 * r), (0.0, vc - 0.2 * r), (-0.15 * r, vc - 0.5 * r)], BLACK, 0.09 * r)
            b.line([(0.0, vc - 0.2 * r), (0.15 * r, vc - 0.5 * r)], BLACK, 0.09 * r)
    else:  # white_rect (speed limit)
        b.rect(-0.75 * r, vc - r, 0.75 * r, vc + r, BLACK)
        b.rect(-0.68 * r, vc - 0.92 * r, 0.68 * r, vc + 0.92 * r, WHITE)
        for k in range(3):
            vv = vc + 0.55 * r - k * 0.45 * r
            b.rect(-0.45 * r, vv - 0.1 * r, 0.45 * r, vv + 0.1 * r, BLACK)


def draw_traffic_light(cv: Canvas, x: float, z: float, *, vt: float, arm: float, lit: int, housing: RGB) -> None:
    b = BB(cv, x, z)
    pole = (60, 62, 64) if cv.rng.random() < 0.6 else (35, 70, 45)
    b.rect(-0.07, 0, 0.07, vt, pole)
    hu = 0.0
    if arm:
        b.rect(min(0.0, arm), vt - 0.14, max(0.0, arm), vt, pole)
        hu = arm * 0.8
    top = vt - 0.1 if arm else vt
    b.rect(hu - 0.2, top - 1.0, hu + 0.2, top, housing)
    colors = ((230, 40, 40), (255, 175, 0), (40, 225, 120))
    for i in range(3):
        v = top - 0.18 - i * 0.32
        b.ellipse(hu - 0.12, v - 0.12, hu + 0.12, v + 0.12, colors[i] if i == lit else (50, 50, 50))


def draw_tree(cv: Canvas, x: float, z: float, *, h: float, crown: float, color: RGB, conifer: bool) -> None:
    b = BB(cv, x, z)
    rng = cv.rng
    trunk = _jit(rng, (90, 65, 45), 10)
    b.rect(-0.15, 0, 0.15, h * 0.55, trunk)
    if conifer:
        for k in range(3):
            v0 = h * (0.25 + 0.22 * k)
            w = crown * (1.0 - 0.25 * k)
            b.poly([(-w, v0), (w, v0), (0.0, v0 + h * 0.45)], _mul(color, 0.9 + 0.08 * k))
        return
    c = h * 0.62
    for _ in range(3):
        du, dv = rng.uniform(-0.4, 0.4) * crown, rng.uniform(-0.25, 0.3) * crown
        rr = crown * rng.uniform(0.6, 0.9)
        b.ellipse(du - rr, c + dv - rr, du + rr, c + dv + rr, _jit(rng, color, 10))
    rr = crown * 0.55
    b.ellipse(
        cv.light * 0.35 * crown - rr,
        c - 0.45 * crown - rr * 0.8,
        cv.light * 0.35 * crown + rr,
        c - 0.45 * crown + rr * 0.8,
        _mul(color, 0.75),
    )


def draw_pole(cv: Canvas, x: float, z: float, *, kind: str, h: float, arm: float) -> None:
    b = BB(cv, x, z)
    if kind == "light":
        col = (140, 142, 146)
        b.rect(-0.08, 0, 0.08, h, col)
        b.line([(0.0, h), (arm * 0.5, h + 0.4), (arm, h + 0.4)], col, 0.08)
        b.ellipse(arm - 0.35, h + 0.25, arm + 0.35, h + 0.55, (210, 210, 200))
    elif kind == "utility":
        col = (100, 75, 50)
        b.rect(-0.12, 0, 0.12, h, col)
        b.rect(-1.0, h - 0.6, 1.0, h - 0.45, col)
        for u in (-0.8, 0.0, 0.8):
            b.rect(u - 0.04, h - 0.45, u + 0.04, h - 0.3, (200, 200, 190))
    elif kind == "bollard":
        b.rect(-0.08, 0, 0.08, h, (60, 60, 62) if arm > 0 else (200, 200, 200))
    elif kind == "hydrant":
        col = (200, 30, 30) if arm > 0 else (240, 200, 30)
        b.rect(-0.13, 0, 0.13, 0.6, col)
        b.ellipse(-0.15, 0.5, 0.15, 0.8, col)
        b.rect(-0.2, 0.35, 0.2, 0.45, _mul(col, 0.8))
    else:  # bin
        col = _jit(cv.rng, ((40, 90, 50), (70, 70, 75), (30, 60, 140), (230, 110, 30))[int(arm) % 4], 10)
        b.rect(-0.3, 0, 0.3, 1.0, col)
        b.rect(-0.33, 1.0, 0.33, 1.08, _mul(col, 0.7))


def draw_lookalike(cv: Canvas, x: float, z: float, *, kind: str, color: RGB, n: int) -> None:
    """Roadwork-coloured things that are not roadwork: a parking gate arm, a striped post, a skip."""
    b = BB(cv, x, z)
    if kind == "gate":
        b.rect(-0.1, 0, 0.1, 1.1, (90, 90, 95))
        for i in range(n):
            b.rect(0.1 + i * 0.5, 0.95, 0.1 + (i + 1) * 0.5, 1.07, color if i % 2 == 0 else WHITE)
    elif kind == "post":
        for i in range(n):
            b.rect(-0.06, i * 0.9 / n, 0.06, (i + 1) * 0.9 / n, color if i % 2 == 0 else WHITE)
    else:  # skip (a waste container)
        b.poly([(-0.8, 0), (0.8, 0), (1.0, 1.0), (-1.0, 1.0)], color)
        b.rect(-1.05, 0.95, 1.05, 1.05, _mul(color, 0.7))


# --------------------------------------------------------------------------------------------------------- the scene
@dataclass
class Road:
    lanes: int
    lw: float
    xl: float  # left edge of the carriageway
    cam_lane: int
    split: int  # lanes < split carry oncoming traffic
    sh_l: float
    sh_r: float
    walk_l: float
    walk_r: float

    @property
    def xr(self) -> float:
        return self.xl + self.lanes * self.lw

    def center(self, lane: int) -> float:
        return self.xl + (lane + 0.5) * self.lw

    @property
    def el(self) -> float:
        return self.xl - self.sh_l

    @property
    def er(self) -> float:
        return self.xr + self.sh_r


@dataclass
class Item:
    z: float
    cls: int  # -1: not labelled
    fn: Callable[..., None]
    x: float
    kw: dict[str, Any]
    shadow: tuple[float, float] | None = None  # (width, height) in m for a cast shadow


@dataclass
class Scene:
    cam: Cam
    road: Road
    style: str
    items: list[Item] = field(default_factory=list)
    ground: list[Callable[[Canvas], None]] = field(default_factory=list)
    closures: list[tuple[int, float, float]] = field(default_factory=list)  # (lane, z0, z1) free of traffic
    sun: tuple[float, float, int] = (0.0, 0.0, 0)  # shadow direction (dx, dz per m of height) and alpha
    dr: bool = False  # domain randomization (wider camera, looks, distractors, occluders, finish)

    def add(
        self,
        z: float,
        cls: int,
        fn: Callable[..., None],
        x: float,
        shadow: tuple[float, float] | None = None,
        **kw: Any,
    ) -> None:
        self.items.append(Item(max(z, 1.2), cls, fn, x, kw, shadow))

    def lane_free(self, lane: int, z: float) -> bool:
        return all(not (ln == lane and z0 - 9.0 < z < z1 + 3.0) for ln, z0, z1 in self.closures)


def _zs(cam: Cam, z0: float, z1: float) -> list[float]:
    n = 2 if cam.k == 0 else 18
    return [z0 * (z1 / z0) ** (i / (n - 1)) for i in range(n)]


def _strip(cam: Cam, xa: float, xb: float, z0: float, z1: float, y: float = 0.0) -> list[Pt]:
    zs = _zs(cam, z0, z1)
    return [cam.p(xa, y, z) for z in zs] + [cam.p(xb, y, z) for z in reversed(zs)]


def _make_scene(rng: Rng, w: int, h: int, dr: bool = False) -> Scene:
    """Camera and road; with domain randomization (dr), camera height 0.8-3.5 m, pitch and focal length wider."""
    cam = Cam(
        w=w,
        h=h,
        hz=h * (rng.uniform(0.2, 0.66) if dr else rng.uniform(0.3, 0.56)),
        vx=w * (0.5 + rng.uniform(-0.2, 0.2) if dr else 0.5 + rng.uniform(-0.12, 0.12)),
        f=w * (rng.uniform(0.55, 1.4) if dr else rng.uniform(0.7, 1.15)),
        hc=rng.uniform(0.8, 3.5) if dr else rng.uniform(1.2, 2.3),
        k=0.0 if rng.random() < 0.55 else rng.uniform(-0.004, 0.004),
    )
    style = _choice(rng, ("urban", "suburban", "rural", "highway"), (0.35, 0.25, 0.22, 0.18))
    if style == "highway":
        lanes = int(rng.integers(2, 5))
        split = 0
    elif style == "urban":
        lanes = int(rng.integers(2, 5))
        split = lanes // 2 if rng.random() < 0.7 else 0
    else:
        lanes, split = 2, 1
    lw = rng.uniform(2.9, 3.7)
    cam_lane = int(rng.integers(split, lanes))
    xl = -(cam_lane + 0.5) * lw - rng.uniform(-0.4, 0.4)
    sh = {"highway": (0.8, 3.5), "rural": (0.2, 1.6), "urban": (0.2, 0.6), "suburban": (0.2, 1.0)}[style]
    walk = (1.5, 4.0) if style in ("urban", "suburban") else (0.0, 0.0)
    road = Road(
        lanes=lanes,
        lw=lw,
        xl=xl,
        cam_lane=cam_lane,
        split=split,
        sh_l=rng.uniform(*sh),
        sh_r=rng.uniform(*sh) + (2.2 if style == "urban" and rng.random() < 0.4 else 0.0),
        walk_l=rng.uniform(*walk) if walk[1] else 0.0,
        walk_r=rng.uniform(*walk) if walk[1] else 0.0,
    )
    sc = Scene(cam, road, style, dr=dr)
    sunny = rng.random() < 0.6
    sc.sun = (rng.uniform(-1.2, 1.2), rng.uniform(-0.6, 1.2), int(rng.uniform(60, 120)) if sunny else 0)
    return sc


SKIES: dict[str, tuple[RGB, RGB]] = {
    "clear": ((70, 125, 205), (185, 210, 235)),
    "overcast": ((160, 165, 175), (205, 208, 212)),
    "dusk": ((60, 75, 130), (235, 170, 120)),
    "hazy": ((150, 175, 200), (215, 220, 220)),
}


def _sky(rng: Rng, cam: Cam) -> tuple[Image.Image, RGB, str]:
    kind = _choice(rng, tuple(SKIES), (0.5, 0.25, 0.1, 0.15))
    top, hor = (_jit(rng, c, 18) for c in SKIES[kind])
    y = np.arange(cam.h, dtype=np.float32)[:, None]
    t = np.clip(y / max(cam.hz, 1.0), 0.0, 1.0) ** rng.uniform(0.6, 1.6)
    col = np.asarray(top, np.float32) + (np.asarray(hor, np.float32) - np.asarray(top, np.float32)) * t
    img = Image.fromarray(col.astype(np.uint8)[:, None, :], "RGB").resize((cam.w, cam.h), Image.Resampling.NEAREST)
    return img, hor, kind


def _background(cv: Canvas, sc: Scene, hor: RGB, sky: str) -> None:
    rng, cam, road, w = cv.rng, sc.cam, sc.road, cv.w
    hz = cam.hz
    if sky in ("clear", "hazy", "overcast") and rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 6))):
            cx, cy, s = rng.uniform(0, w), rng.uniform(0, hz * 0.8), rng.uniform(0.04, 0.15) * w
            al = int(rng.uniform(90, 200))
            cloud: RGBA = (250, 250, 250, al) if sky != "overcast" else (150, 150, 155, al)
            for _k in range(int(rng.integers(3, 6))):
                dx, dy, rr = rng.uniform(-s, s), rng.uniform(-s * 0.2, s * 0.2), s * rng.uniform(0.3, 0.6)
                cv.da.ellipse((cx + dx - rr, cy + dy - rr * 0.5, cx + dx + rr, cy + dy + rr * 0.5), fill=cloud)
    far = _choice(rng, ("city", "hills", "trees", "none"), (0.3 if sc.style == "urban" else 0.05, 0.3, 0.3, 0.15))
    if far == "city":
        x = -10.0
        while x < w:
            bw, bh = rng.uniform(8, 50), rng.uniform(4, 0.3 * hz)
            cv.d.rectangle(
                (x, hz - bh, x + bw, hz + 1), fill=_mix(_pick(rng, BUILDING_COLORS, 20), hor, rng.uniform(0.4, 0.7))
            )
            x += bw * rng.uniform(0.6, 1.1)
    elif far in ("hills", "trees"):
        base = _mix(_pick(rng, FOLIAGE, 15), hor, rng.uniform(0.3, 0.6))
        if far == "hills":
            n = 12
            ys = np.cumsum(rng.normal(0, hz * 0.03, n + 1)) + hz - rng.uniform(5, hz * 0.15)
            pts = [(w * i / n, float(min(hz, ys[i]))) for i in range(n + 1)]
            cv.d.polygon([*pts, (w, hz + 1), (0, hz + 1)], fill=base)
        else:
            x = -5.0
            while x < w:
                rr = rng.uniform(3, 12)
                cv.d.ellipse((x - rr, hz - rr * 1.6, x + rr, hz + 2), fill=_jit(rng, base, 8))
                x += rr * 1.2
    ground = _pick(rng, GRASS, 15) if sc.style != "urban" or rng.random() < 0.3 else _grey(rng, 120, 170, 8)
    cv.d.rectangle((0, hz, w, cv.h), fill=ground)
    z_near, z_far = cam.zmin * 0.4, 900.0
    asphalt = _grey(rng, 55, 120) if rng.random() < 0.85 else _jit(rng, (118, 112, 104), 8)
    paved = _mul(asphalt, rng.uniform(0.95, 1.25))
    walk_c = _grey(rng, 140, 200, 6)
    if road.walk_l:
        cv.d.polygon(_strip(cam, road.el - road.walk_l, road.el, z_near, z_far, 0.12), fill=walk_c)
    if road.walk_r:
        cv.d.polygon(_strip(cam, road.er, road.er + road.walk_r, z_near, z_far, 0.12), fill=walk_c)
    cv.d.polygon(_strip(cam, road.el, road.er, z_near, z_far), fill=paved)
    cv.d.polygon(_strip(cam, road.xl, road.xr, z_near, z_far), fill=asphalt)
    for xe, wk in ((road.el, road.walk_l), (road.er, road.walk_r)):
        if wk:
            kerb = _mul(walk_c, 1.08)
            zs = _zs(cam, z_near, z_far)
            cv.d.polygon([cam.p(xe, 0, z) for z in zs] + [cam.p(xe, 0.14, z) for z in reversed(zs)], fill=kerb)
    for _ in range(int(rng.integers(0, 4))):  # patches
        xa = rng.uniform(road.xl, road.xr - 1)
        za = rng.uniform(cam.zmin, 60)
        cv.d.polygon(_strip(cam, xa, xa + rng.uniform(0.5, 3), za, za + rng.uniform(1, 8)), fill=_jit(rng, asphalt, 14))
    mark = _jit(rng, (232, 232, 228), 10) if rng.random() < 0.7 else _jit(rng, (185, 185, 180), 10)
    yellow = (222, 184, 48)
    mw = rng.uniform(0.1, 0.18)
    for xe in (road.xl + 0.2, road.xr - 0.2):
        cv.d.polygon(_strip(cam, xe - mw / 2, xe + mw / 2, z_near, 300.0), fill=mark)
    dash_l, period = rng.uniform(2.0, 4.0), rng.uniform(7.0, 12.0)
    for i in range(1, road.lanes):
        xb = road.xl + i * road.lw
        centre = i == road.split
        style = _choice(rng, ("dash", "solid", "double_y", "dash_y"), (0.4, 0.2, 0.25, 0.15)) if centre else "dash"
        col = yellow if style.endswith("_y") else mark
        if style in ("solid", "double_y"):
            for dx in (-0.15, 0.15) if style == "double_y" else (0.0,):
                cv.d.polygon(_strip(cam, xb + dx - mw / 2, xb + dx + mw / 2, z_near, 300.0), fill=col)
            continue
        z = z_near + rng.uniform(0, period)
        while z < 160:
            if cam.f * dash_l / z * (cam.hc / z) > 0.6:
                cv.d.polygon(_strip(cam, xb - mw / 2, xb + mw / 2, z, z + dash_l), fill=col)
            z += period
    if sc.style == "urban" and rng.random() < 0.3:  # zebra crossing
        zc = rng.uniform(cam.zmin + 4, 40)
        x = road.xl
        while x < road.xr:
            cv.d.polygon(_strip(cam, x, x + 0.5, zc, zc + 3.0), fill=mark)
            x += 1.0
    for _ in range(int(rng.integers(0, 3)) if sc.sun[2] else 0):  # shadows of things off screen
        za = rng.uniform(cam.zmin * 0.6, 60)
        side = rng.random() < 0.5
        x0 = road.el - 2 if side else rng.uniform(road.xl, road.xr)
        x1 = rng.uniform(road.xl, road.xr) if side else road.er + 2
        cv.da.polygon(_strip(cam, x0, x1, za, za + rng.uniform(2, 12)), fill=(0, 0, 20, int(sc.sun[2] * 0.9)))
    if sc.style == "highway":
        for xg in (road.el - 0.4, road.er + 0.4):
            zs = _zs(cam, z_near, 400.0)
            cv.d.polygon(
                [cam.p(xg, 0.5, z) for z in zs] + [cam.p(xg, 0.8, z) for z in reversed(zs)], fill=(165, 168, 172)
            )
            z = z_near + rng.uniform(0, 4)
            while z < 150:
                pa, pb = cam.p(xg, 0.0, z), cam.p(xg, 0.8, z)
                cv.d.line((pa, pb), fill=(120, 120, 124), width=max(1, int(0.12 * cam.f / z)))
                z += 4.0
    if sc.style in ("urban", "suburban"):
        for sg in (-1.0, 1.0):
            if rng.random() < 0.12:
                continue
            _buildings(cv, sc, sg)


def _buildings(cv: Canvas, sc: Scene, sg: float) -> None:
    rng, cam, road = cv.rng, sc.cam, sc.road
    edge = (road.el - road.walk_l) if sg < 0 else (road.er + road.walk_r)
    urban = sc.style == "urban"
    specs: list[tuple[float, float, float, float, RGB]] = []
    z = cam.zmin * rng.uniform(0.3, 1.5)
    while z < 260:
        length = rng.uniform(8, 30) if urban else rng.uniform(8, 14)
        height = rng.uniform(6, 30) if urban else rng.uniform(4, 8)
        setback = rng.uniform(0, 2) if urban else rng.uniform(3, 10)
        specs.append((z, z + length, height, edge + sg * setback, _pick(rng, BUILDING_COLORS, 15)))
        z += length + (rng.uniform(0, 4) if urban else rng.uniform(5, 15))
    windows_left = 90
    for z0, z1, bh, xf, col in reversed(specs):
        # end face towards the camera, then the facade along the road
        a, b = cam.p(xf, 0, z0), cam.p(xf + sg * 14, bh, z0)
        cv.d.rectangle(
            (min(a[0], b[0]), b[1], max(a[0], b[0]), a[1]), fill=_mul(col, 0.85 if sg * cv.light > 0 else 1.05)
        )
        cv.d.polygon([cam.p(xf, 0, z0), cam.p(xf, 0, z1), cam.p(xf, bh, z1), cam.p(xf, bh, z0)], fill=col)
        glass = _jit(rng, (60, 75, 95), 15)
        if cam.f / z0 * 1.2 < 3:
            continue
        if sc.dr and rng.random() < 0.45:
            _awning(cv, xf, z0 + rng.uniform(0, 2), min(z1, z0 + rng.uniform(4, 12)), sg, rng)
        floors = int(bh // 3.2)
        ncol = int((z1 - z0 - 1) // 3.0)
        for fl in range(floors):
            y0 = 0.9 + fl * 3.2
            for j in range(ncol):
                if windows_left <= 0:
                    break
                za = z0 + 1.0 + j * 3.0
                if cam.f / za * 1.2 < 2.5:
                    break
                cv.d.polygon(
                    [
                        cam.p(xf, y0, za),
                        cam.p(xf, y0, za + 1.6),
                        cam.p(xf, y0 + 1.5, za + 1.6),
                        cam.p(xf, y0 + 1.5, za),
                    ],
                    fill=glass,
                )
                windows_left -= 1


def _awning(cv: Canvas, xf: float, za: float, zb: float, sg: float, rng: Rng) -> None:
    """A striped shop awning on a facade (a roadwork look-alike: orange or red and white stripes)."""
    cam = cv.cam
    col, out = _pick(rng, AWNING_COLORS, 15), rng.uniform(0.8, 1.6)
    y_top, y_low = rng.uniform(2.8, 3.4), rng.uniform(2.1, 2.5)
    n = int(rng.integers(4, 14))
    for i in range(n):
        z0, z1 = za + (zb - za) * i / n, za + (zb - za) * (i + 1) / n
        xo = xf - sg * out
        cv.d.polygon([cam.p(xf, y_top, z0), cam.p(xf, y_top, z1), cam.p(xo, y_low, z1), cam.p(xo, y_low, z0)],
                     fill=col if i % 2 else WHITE)  # fmt: skip


# ------------------------------------------------------------------------------------------------------- placement
def _add_device(sc: Scene, kind: str, x: float, z: float, st: dict[str, Any], fs: float | None = None) -> None:
    rng: Rng = st["rng"]
    if kind == "cone":
        sc.add(
            z,
            CONE,
            draw_cone,
            x,
            (0.3, st["cone_h"]),
            h=st["cone_h"],
            color=st["cone_c"],
            bands=st["bands"],
            base=st["cone_base"],
            r0=st["cone_r0"],
            r1=st["cone_r1"],
        )
    elif kind == "drum":
        sc.add(
            z,
            DRUM,
            draw_drum,
            x,
            (0.6, 0.95),
            h=rng.uniform(0.9, 1.0),
            w=rng.uniform(0.55, 0.62),
            color=st["drum_c"],
            nb=st["drum_nb"],
        )
    elif kind == "panel":
        sc.add(
            z,
            PANEL,
            draw_panel,
            x,
            (0.3, 1.3),
            pw=st["panel_w"],
            ph=st["panel_h"],
            vb=st["panel_vb"],
            stripe=st["stripe"],
            fs=rng.uniform(0.75, 1.0),
            lamp=bool(rng.random() < 0.3),
        )
    elif kind == "barricade":
        sc.add(
            z,
            BARRICADE,
            draw_barricade,
            x,
            (1.2, 1.2),
            w=rng.uniform(1.2, 2.4),
            h=rng.uniform(1.0, 1.5),
            nb=int(rng.integers(1, 4)),
            fs=fs or rng.uniform(0.45, 1.0),
            stripe=st["stripe"],
            leg=WHITE if rng.random() < 0.5 else (110, 110, 112),
            closed_panel=bool(rng.random() < 0.3),
            lamp=bool(rng.random() < 0.3),
        )


def _style(rng: Rng, dr: bool = False) -> dict[str, Any]:
    """One work zone's look; with domain randomization (dr), wider sizes, shapes and colours."""
    st = {
        "rng": rng,
        "cone_h": rng.uniform(0.45, 1.0),
        "cone_c": _pick(rng, CONE_COLORS, 10),
        "bands": int(rng.integers(1, 3)),
        "cone_base": BLACK if rng.random() < 0.5 else _pick(rng, CONE_COLORS, 10),
        "drum_c": _pick(rng, CONE_COLORS, 10),
        "drum_nb": 5 if rng.random() < 0.7 else 4,
        "panel_w": rng.uniform(0.2, 0.3),
        "panel_h": rng.uniform(0.6, 0.95),
        "panel_vb": rng.uniform(0.35, 0.7),
        "stripe": _pick(rng, CONE_COLORS, 10) if rng.random() < 0.85 else (200, 30, 30),
        "cone_r0": 0.2,
        "cone_r1": 0.04,
    }
    if dr:
        st["cone_h"] = rng.uniform(0.3, 1.2)
        st["cone_r0"], st["cone_r1"] = rng.uniform(0.13, 0.3), rng.uniform(0.02, 0.08)
        st["bands"] = int(rng.integers(0, 3))
        for key in ("cone_c", "drum_c", "stripe"):
            if rng.random() < 0.4:
                st[key] = _pick(rng, DR_DEVICE_COLORS, 30)
    return st


def _barrier_line(sc: Scene, x: float, z0: float, z1: float, rng: Rng) -> None:
    concrete = rng.random() < 0.5
    seg = rng.uniform(3.0, 4.0) if concrete else rng.uniform(1.6, 2.2)
    h = rng.uniform(0.8, 1.05)
    wb, tw = (0.6, 0.2) if concrete else (0.5, 0.3)
    colors = (
        [_jit(rng, (185, 182, 175), 15)]
        if concrete
        else [_pick(rng, ((215, 35, 30), WHITE, (250, 120, 20)), 8) for _ in range(2)]
    )
    stripe = bool(rng.random() < 0.3)
    z, i = z0, 0
    while z < min(z1, 140):
        sc.add(
            z,
            BARRIER,
            draw_barrier_run,
            x,
            None,
            length=seg - 0.05,
            h=h,
            wb=wb,
            tw=tw,
            color=colors[i % len(colors)],
            along=True,
            concrete=concrete,
            stripe=stripe,
        )
        z += seg
        i += 1


def _barrier_across(sc: Scene, x: float, z: float, width: float, rng: Rng) -> None:
    concrete = rng.random() < 0.4
    h = rng.uniform(0.8, 1.05)
    wb, tw = (0.6, 0.2) if concrete else (0.5, 0.3)
    color = _jit(rng, (185, 182, 175), 15) if concrete else _pick(rng, ((215, 35, 30), WHITE, (250, 120, 20)), 8)
    seg = rng.uniform(1.8, 3.5) if concrete else rng.uniform(1.2, 2.0)
    n = max(1, round(width / seg))
    for i in range(n):
        xc = x - width / 2 + (i + 0.5) * width / n
        sc.add(
            z,
            BARRIER,
            draw_barrier_run,
            xc,
            None,
            length=width / n - 0.04,
            h=h,
            wb=wb,
            tw=tw,
            color=color,
            along=False,
            concrete=concrete,
            stripe=bool(rng.random() < 0.3),
        )


def _work_vehicle(sc: Scene, x: float, z: float, rng: Rng, road_ok: bool = True) -> None:
    kind = _choice(
        rng,
        ("truck", "pickup", "tma", "excavator", "roller", "loader"),
        (0.3, 0.2, 0.12, 0.2, 0.09, 0.09) if road_ok else (0, 0, 0, 0.5, 0.25, 0.25),
    )
    color = _pick(rng, WORK_VEHICLE_COLORS, 12)
    if kind in ("excavator", "roller", "loader") and color[2] > 150:
        color = _pick(rng, WORK_VEHICLE_COLORS[:4], 12)
    sc.add(
        z,
        WORK_VEHICLE,
        draw_work_vehicle,
        x,
        (2.4, 2.5),
        kind=kind,
        color=color,
        away=bool(rng.random() < 0.7),
        fs=rng.uniform(0.5, 1.0),
    )


def _worker(sc: Scene, x: float, z: float, rng: Rng) -> None:
    sc.add(
        z,
        WORKER,
        draw_person,
        x,
        (0.5, 1.75),
        h=rng.uniform(1.6, 1.9),
        worker=True,
        shirt=_pick(rng, CLOTHES, 12),
        pants=_pick(rng, CLOTHES[:6], 10) if rng.random() < 0.8 else _pick(rng, HIVIS, 8),
        skin=_pick(rng, SKIN, 8),
        hair=_pick(rng, HAIR, 8),
        vest=_pick(rng, HIVIS, 10),
        helmet=_pick(rng, HELMETS, 8),
        pose=_choice(rng, ("stand", "walk", "paddle", "shovel", "wave"), (0.35, 0.25, 0.12, 0.18, 0.1)),
        sleeves_vest=bool(rng.random() < 0.3),
    )


def _work_sign(sc: Scene, x: float, z: float, rng: Rng) -> None:
    stand = rng.random() < 0.4
    sc.add(
        z,
        WORK_SIGN,
        draw_work_sign,
        x,
        (0.2, 2.0),
        a=rng.uniform(0.75, 1.2),
        fs=rng.uniform(0.6, 1.0),
        vb=rng.uniform(0.3, 0.7) if stand else rng.uniform(1.2, 2.2),
        stand=stand,
        glyph=_choice(rng, ("worker", "text", "arrow", "flagger", "lane"), (0.4, 0.25, 0.12, 0.13, 0.1)),
        color=_pick(rng, ((252, 128, 10), (250, 150, 20), (245, 110, 15)), 8)
        if rng.random() < 0.92
        else (250, 215, 30),
        triangle=bool(rng.random() < 0.12),
    )


def _arrow_board(sc: Scene, x: float, z: float, rng: Rng, pattern: str) -> None:
    sc.add(
        z,
        ARROW_BOARD,
        draw_arrow_board,
        x,
        (1.6, 2.5),
        w=rng.uniform(1.8, 2.5),
        vb=rng.uniform(1.6, 2.4),
        fs=rng.uniform(0.8, 1.0),
        pattern=pattern,
        trailer=_pick(rng, WORK_VEHICLE_COLORS, 12),
        lit=bool(rng.random() < 0.88),
        mounted=False,
    )


def _shoulder_x(sc: Scene, side: float, rng: Rng) -> float:
    road = sc.road
    if side > 0:
        return road.er + rng.uniform(0.2, 0.8) + (road.walk_r * rng.uniform(0, 0.5))
    return road.el - rng.uniform(0.2, 0.8) - (road.walk_l * rng.uniform(0, 0.5))


def _dig(sc: Scene, x0: float, x1: float, z0: float, z1: float, rng: Rng) -> None:
    """Ground decoration in a work zone: an excavated patch, a steel plate, or a dirt pile."""
    kind = _choice(rng, ("pit", "plate", "pile"))
    col = _jit(rng, (95, 70, 50), 15) if kind != "plate" else _jit(rng, (70, 72, 76), 8)

    def draw(cv: Canvas) -> None:
        cam = cv.cam
        if kind == "pile":
            zc, xc, r = 0.5 * (z0 + z1), 0.5 * (x0 + x1), min(1.8, 0.5 * abs(x1 - x0))
            b = BB(cv, xc, zc)
            cv.d.polygon([b.pt(-r, 0), b.pt(-0.5 * r, 0.5 * r), b.pt(0.1 * r, 0.7 * r), b.pt(r, 0)], fill=col)
        else:
            cv.d.polygon(_strip(cam, x0, x1, z0, z1), fill=col)

    sc.ground.append(draw)


def _plan_roadwork(sc: Scene, rng: Rng, force: bool) -> None:
    cam, road = sc.cam, sc.road
    st = _style(rng, sc.dr)
    zmin = cam.zmin
    if force:
        z = zmin * rng.uniform(1.5, 2.5)
        x = cam.x_at(cam.w * rng.uniform(0.3, 0.7), z)
        _add_device(sc, _choice(rng, ("cone", "drum")), x, z, st)
        return
    scen = _choice(
        rng, ("closure", "shoulder", "closed", "sidewalk", "scatter", "signs"), (0.4, 0.17, 0.1, 0.11, 0.12, 0.1)
    )
    side = 1.0 if rng.random() < 0.6 else -1.0
    dev = _choice(rng, ("cone", "drum", "panel", "barrier", "mixed"), (0.38, 0.2, 0.13, 0.17, 0.12))

    def device(x: float, z: float, allow_barrier: bool = False) -> None:
        kind = dev if dev != "mixed" else _choice(rng, ("cone", "drum", "panel"))
        if kind == "barrier" and not allow_barrier:
            kind = "cone" if rng.random() < 0.6 else "drum"
        _add_device(sc, kind, x + rng.uniform(-0.1, 0.1), z, st)

    spacing = {"cone": rng.uniform(3, 8), "drum": rng.uniform(5, 12), "panel": rng.uniform(4, 10)}.get(
        dev, rng.uniform(3, 9)
    )
    if scen == "closure":
        lane = road.lanes - 1 if side > 0 else 0
        x_out = road.xr if side > 0 else road.xl
        x_in = x_out - side * road.lw
        zt0 = rng.uniform(10, 25) if lane == road.cam_lane else rng.uniform(zmin * 0.4, 22)
        zt1 = zt0 + rng.uniform(8, 25)
        zend = zt1 + rng.uniform(10, 55)
        sc.closures.append((lane, zt0, zend))
        n = max(2, int((zt1 - zt0) / spacing) + 1)
        for i in range(n):
            t = i / (n - 1)
            device(x_out - side * 0.4 + (x_in + side * 0.25 - (x_out - side * 0.4)) * t, zt0 + (zt1 - zt0) * t)
        if dev == "barrier":
            _barrier_line(sc, x_in + side * 0.4, zt1, zend, rng)
        else:
            z = zt1 + spacing
            while z < min(zend, 75):
                device(x_in + side * 0.25, z)
                z += spacing
        xc = x_in + side * road.lw / 2
        if rng.random() < 0.4:
            _arrow_board(sc, xc + rng.uniform(-0.3, 0.3), zt1 + rng.uniform(2, 8), rng, "left" if side > 0 else "right")
        zv = rng.uniform(zt1 + 4, max(zt1 + 5, zend - 6))
        if rng.random() < 0.55:
            _work_vehicle(sc, xc + rng.uniform(-0.4, 0.4), zv, rng)
        for _ in range(int(rng.integers(0, 4)) if rng.random() < 0.65 else 0):
            _worker(sc, xc + rng.uniform(-1.3, 1.3), zv + rng.uniform(-6, 6), rng)
        if rng.random() < 0.25:
            _add_device(sc, "barricade", xc, rng.uniform(zt1 + 2, zend), st)
        if rng.random() < 0.4:
            za = rng.uniform(zt1 + 2, zend)
            _dig(sc, xc - 1.2, xc + 1.2, za, za + rng.uniform(2, 8), rng)
        for _ in range(int(rng.integers(1, 3)) if rng.random() < 0.7 else 0):
            _work_sign(sc, _shoulder_x(sc, side, rng), rng.uniform(max(3.0, zmin * 0.8), zt0 + 10), rng)
        if rng.random() < 0.25:
            _work_sign(sc, _shoulder_x(sc, -side, rng), rng.uniform(max(3.0, zmin * 0.8), zt0 + 15), rng)
    elif scen == "shoulder":
        xs = road.er - 1.0 if side > 0 else road.el + 1.0
        zv = rng.uniform(max(zmin, 6), 32)
        truck = rng.random() < 0.8
        if truck:
            _work_vehicle(sc, xs + side * rng.uniform(0, 0.8), zv, rng)
            sc.closures.append((road.lanes - 1 if side > 0 else 0, zv - 12, zv + 10))
        z = zv - rng.uniform(2, 4)
        for _ in range(int(rng.integers(2, 7))):
            device(xs - side * rng.uniform(0.8, 1.6), z)
            z -= rng.uniform(2.5, 6)
        for _ in range(int(rng.integers(0, 4))):
            _worker(sc, _shoulder_x(sc, side, rng), zv + rng.uniform(-5, 8), rng)
        if rng.random() < 0.6:
            _work_sign(sc, _shoulder_x(sc, side, rng), rng.uniform(max(3.0, zmin * 0.8), zv), rng)
        if rng.random() < 0.3 and not truck:
            _work_vehicle(sc, _shoulder_x(sc, side, rng) + side * 2, zv + 5, rng, road_ok=False)
    elif scen == "closed":
        zc = rng.uniform(max(zmin, 8), 32)
        across = rng.random() < 0.35
        for lane in range(road.lanes):
            sc.closures.append((lane, zc, 1e9))
            if across:
                _barrier_across(sc, road.center(lane), zc, road.lw * rng.uniform(0.8, 1.0), rng)
            else:
                _add_device(
                    sc, "barricade", road.center(lane) + rng.uniform(-0.5, 0.5), zc + rng.uniform(-0.5, 0.5), st
                )
            if rng.random() < 0.6:
                device(road.xl + (lane + rng.uniform(0, 1)) * road.lw, zc + rng.uniform(-2, 1))
        for _ in range(int(rng.integers(1, 3))):
            _work_sign(
                sc,
                _shoulder_x(sc, side, rng) if rng.random() < 0.6 else road.center(int(rng.integers(road.lanes))),
                zc - rng.uniform(1, 15),
                rng,
            )
        if rng.random() < 0.35:
            _arrow_board(
                sc,
                road.center(int(rng.integers(road.lanes))),
                zc + rng.uniform(3, 12),
                rng,
                _choice(rng, ("both", "bar", "left", "right")),
            )
        if rng.random() < 0.5:
            _work_vehicle(sc, road.center(int(rng.integers(road.lanes))), zc + rng.uniform(8, 40), rng)
        for _ in range(int(rng.integers(0, 3))):
            _worker(sc, rng.uniform(road.xl, road.xr), zc + rng.uniform(2, 15), rng)
    elif scen == "sidewalk":
        if side > 0:
            xa, xb = road.er + 0.3, road.er + max(1.6, road.walk_r + road.sh_r * 0.3)
        else:
            xa, xb = road.el - max(1.6, road.walk_l + road.sh_l * 0.3), road.el - 0.3
        za = rng.uniform(max(zmin, 4), 22)
        zb = za + rng.uniform(4, 14)
        _dig(sc, xa + 0.3, xb - 0.3, za + 0.5, zb - 0.5, rng)
        xk = xa if side > 0 else xb
        if rng.random() < 0.3:
            _barrier_line(sc, xk, za, zb, rng)
        else:
            for z in np.arange(za, zb, rng.uniform(2.0, 3.0)):
                kind = "barricade" if rng.random() < 0.7 else "cone"
                _add_device(sc, kind, xk, float(z), st, fs=rng.uniform(0.25, 0.5))
        _add_device(sc, "barricade", 0.5 * (xa + xb), za, st)
        for _ in range(int(rng.integers(0, 3))):
            _worker(sc, rng.uniform(xa, xb), rng.uniform(za, zb), rng)
        if rng.random() < 0.5:
            _work_sign(sc, (xa if side > 0 else xb) + rng.uniform(-0.3, 0.3), za - rng.uniform(2, 8), rng)
        if rng.random() < 0.35:
            _work_vehicle(sc, (road.er - 1.2) if side > 0 else (road.el + 1.2), zb + rng.uniform(0, 6), rng)
    elif scen == "scatter":
        zc = rng.uniform(max(zmin * 0.8, 3), 20)
        xc = _shoulder_x(sc, side, rng) - side * rng.uniform(0, 1.5)
        for _ in range(int(rng.integers(2, 7))):
            kind = _choice(rng, ("cone", "drum", "panel", "barricade"), (0.5, 0.2, 0.15, 0.15))
            _add_device(sc, kind, xc + rng.uniform(-1.5, 1.5), zc + rng.uniform(-5, 5), st)
        if rng.random() < 0.4:
            _worker(sc, xc + rng.uniform(-1, 1), zc + rng.uniform(-3, 3), rng)
        if rng.random() < 0.3:
            _dig(sc, xc - 1, xc + 1, zc, zc + 3, rng)
        if rng.random() < 0.25:
            _work_vehicle(sc, xc + side * 3, zc + rng.uniform(3, 10), rng, road_ok=False)
        if rng.random() < 0.25:
            _barrier_line(sc, road.er + 0.5 if side > 0 else road.el - 0.5, zc - 2, zc + rng.uniform(4, 15), rng)
    else:  # signs (and perhaps a few cones)
        for _ in range(int(rng.integers(1, 3))):
            _work_sign(
                sc,
                _shoulder_x(sc, side if rng.random() < 0.7 else -side, rng),
                rng.uniform(max(3.0, zmin * 0.8), 30),
                rng,
            )
        if rng.random() < 0.4:
            z = rng.uniform(zmin, 40)
            for _ in range(int(rng.integers(1, 4))):
                device(_shoulder_x(sc, side, rng), z)
                z += rng.uniform(3, 8)
        if rng.random() < 0.2:
            _arrow_board(
                sc,
                _shoulder_x(sc, side, rng),
                rng.uniform(max(zmin, 8), 45),
                rng,
                _choice(rng, ("both", "bar", "left", "right", "chevron")),
            )


SIGN_KINDS = (
    "stop",
    "speed",
    "noentry",
    "blue_circle",
    "blue_rect",
    "green_rect",
    "yield",
    "yellow_diamond",
    "white_rect",
)


def _pedestrian(sc: Scene, x: float, z: float, rng: Rng) -> None:
    sc.add(
        z,
        -1,
        draw_person,
        x,
        (0.5, 1.7),
        h=rng.uniform(1.5, 1.9),
        worker=False,
        shirt=_pick(rng, CLOTHES, 14),
        pants=_pick(rng, CLOTHES, 10),
        skin=_pick(rng, SKIN, 8),
        hair=_pick(rng, HAIR, 8),
        vest=WHITE,
        helmet=WHITE,
        pose=_choice(rng, ("stand", "walk", "wave"), (0.45, 0.45, 0.1)),
        sleeves_vest=False,
    )


def _car(sc: Scene, lane: int, z: float, rng: Rng, lookalike: bool = False, x: float | None = None) -> None:
    road = sc.road
    kind = _choice(rng, ("sedan", "suv", "van", "bus", "box"), (0.5, 0.25, 0.12, 0.05, 0.08))
    taxi = (lookalike and rng.random() < 0.35) or (not lookalike and rng.random() < 0.05)
    if taxi:
        kind, color = "sedan", _jit(rng, (244, 192, 22), 10)
    elif lookalike:
        color = _pick(rng, LOOKALIKE_CARS, 12)
    else:
        color = _pick(rng, CAR_COLORS, 12)
    xc = road.center(lane) + rng.uniform(-0.4, 0.4) if x is None else x
    sc.add(z, -1, draw_car, xc, (1.9, 1.5), kind=kind, color=color, away=lane >= road.split, taxi=taxi)


def _sign(sc: Scene, x: float, z: float, rng: Rng, kind: str | None = None) -> None:
    kind = kind or SIGN_KINDS[int(rng.integers(len(SIGN_KINDS)))]
    sc.add(
        z,
        -1,
        draw_road_sign,
        x,
        None,
        kind=kind,
        size=rng.uniform(0.6, 1.0),
        vc=rng.uniform(1.8, 2.8),
        fs=rng.uniform(0.6, 1.0),
    )


def _plan_lookalikes(sc: Scene, rng: Rng, roadwork: bool) -> None:
    """Domain randomization's extra look-alikes: orange cars, red signs, gate arms, striped posts, skips."""
    zmin = sc.cam.zmin
    for _ in range(int(rng.integers(0, 3) if roadwork else rng.integers(1, 5))):
        what = _choice(rng, ("car", "sign", "gate", "post", "skip"), (0.25, 0.25, 0.15, 0.15, 0.2))
        sg = 1.0 if rng.random() < 0.6 else -1.0
        z = rng.uniform(max(4.0, zmin * 0.8), 45)
        x = _shoulder_x(sc, sg, rng)
        if what == "car":
            lane = int(rng.integers(sc.road.lanes))
            if sc.lane_free(lane, z) and not (lane == sc.road.cam_lane and z < 10):
                _car(sc, lane, z, rng, lookalike=True)
        elif what == "sign":
            _sign(sc, x, z, rng, _choice(rng, ("stop", "noentry", "yield")))
        else:
            col = _pick(rng, (*LOOKALIKE_CARS, (200, 30, 35)), 15)
            sc.add(z, -1, draw_lookalike, x, (1.0, 1.0), kind=what, color=col, n=int(rng.integers(3, 9)))


def _plan_distractors(sc: Scene, rng: Rng, roadwork: bool) -> None:
    if sc.dr:
        _plan_lookalikes(sc, rng, roadwork)
    cam, road = sc.cam, sc.road
    zmin = cam.zmin
    n_cars = int(rng.integers(0, 7 if sc.style == "highway" else 5))
    for _ in range(n_cars):
        lane = int(rng.integers(road.lanes))
        z = rng.uniform(8.0 if lane == road.cam_lane else zmin * 0.8, 110)
        if lane == road.cam_lane and z < 14:
            z += 10
        if sc.lane_free(lane, z):
            _car(sc, lane, z, rng, lookalike=bool(rng.random() < (0.3 if not roadwork else 0.12)))
    if sc.style == "urban" and rng.random() < 0.5:
        z = rng.uniform(zmin * 0.6, 20)
        for _ in range(int(rng.integers(1, 5))):
            if sc.lane_free(road.lanes - 1, z):
                sc.add(
                    z,
                    -1,
                    draw_car,
                    road.xr + 1.1,
                    (1.9, 1.5),
                    kind="sedan",
                    color=_pick(rng, CAR_COLORS, 10),
                    away=True,
                    taxi=False,
                )
            z += rng.uniform(5.5, 9)
    if road.walk_l or road.walk_r:
        for _ in range(int(rng.integers(0, 6))):
            sg = 1.0 if rng.random() < 0.5 else -1.0
            wk = road.walk_r if sg > 0 else road.walk_l
            if wk:
                xe = road.er if sg > 0 else road.el
                _pedestrian(sc, xe + sg * rng.uniform(0.4, wk), rng.uniform(zmin * 0.7, 60), rng)
    trees = {"urban": 0.2, "suburban": 0.7, "rural": 0.8, "highway": 0.4}[sc.style]
    for sg in (-1.0, 1.0):
        edge = (road.er + road.walk_r) if sg > 0 else (road.el - road.walk_l)
        if rng.random() < trees:
            z = rng.uniform(max(zmin, 6.0), 18)
            fol = _pick(rng, FOLIAGE, 12)
            conifer = bool(rng.random() < 0.25)
            while z < 140:
                ht = rng.uniform(4, 11)
                sc.add(
                    z,
                    -1,
                    draw_tree,
                    edge + sg * rng.uniform(0.5, 5),
                    (2.0, ht * 0.7),
                    h=ht,
                    crown=rng.uniform(1.4, 3.2),
                    color=_jit(rng, fol, 10),
                    conifer=conifer,
                )
                z += rng.uniform(6, 25)
        if rng.random() < 0.6:
            kind = _choice(rng, ("light", "utility"), (0.7 if sc.style in ("urban", "highway") else 0.3, 0.5))
            z = rng.uniform(zmin * 0.5, 15)
            gap = rng.uniform(20, 40)
            while z < 160:
                sc.add(
                    z,
                    -1,
                    draw_pole,
                    edge - sg * (road.walk_r if sg > 0 else road.walk_l) * 0.3 + sg * 0.4,
                    None,
                    kind=kind,
                    h=rng.uniform(7, 10),
                    arm=-sg * rng.uniform(1.2, 2.5),
                )
                z += gap
    n_signs = int(rng.integers(0, 3))
    n_look = int(rng.integers(1, 5)) if not roadwork else int(rng.integers(0, 2))
    for _ in range(n_signs):
        _sign(sc, _shoulder_x(sc, 1.0 if rng.random() < 0.7 else -1.0, rng), rng.uniform(zmin * 0.9, 60), rng)
    for _ in range(n_look):
        what = _choice(rng, ("car", "sign", "ped", "light", "pole", "misc"), (0.25, 0.3, 0.15, 0.12, 0.08, 0.1))
        sg = 1.0 if rng.random() < 0.65 else -1.0
        z = rng.uniform(max(4.0, zmin * 0.8), 50)
        if what == "car":
            lane = int(rng.integers(road.lanes))
            if sc.lane_free(lane, z) and not (lane == road.cam_lane and z < 10):
                _car(sc, lane, z, rng, lookalike=True)
        elif what == "sign":
            _sign(
                sc,
                _shoulder_x(sc, sg, rng),
                z,
                rng,
                _choice(
                    rng,
                    ("stop", "speed", "noentry", "yield", "yellow_diamond", "blue_circle", "blue_rect", "green_rect"),
                ),
            )
        elif what == "ped":
            _pedestrian(sc, _shoulder_x(sc, sg, rng), z, rng)
        elif what == "light":
            arm = -sg * rng.uniform(2, 5) if rng.random() < 0.5 else 0.0
            sc.add(
                z,
                -1,
                draw_traffic_light,
                _shoulder_x(sc, sg, rng),
                None,
                vt=rng.uniform(3.0, 5.0) if arm else rng.uniform(2.6, 3.4),
                arm=arm,
                lit=int(rng.integers(3)),
                housing=(30, 30, 32) if rng.random() < 0.7 else (235, 190, 30),
            )
        elif what == "pole":
            sc.add(
                z,
                -1,
                draw_pole,
                _shoulder_x(sc, sg, rng),
                None,
                kind="bollard" if rng.random() < 0.6 else "light",
                h=rng.uniform(0.8, 1.2),
                arm=float(rng.integers(0, 2)),
            )
        else:
            sc.add(
                z,
                -1,
                draw_pole,
                _shoulder_x(sc, sg, rng),
                None,
                kind=_choice(rng, ("hydrant", "bin")),
                h=1.0,
                arm=float(rng.integers(0, 4)),
            )


def _cast_shadow(cv: Canvas, sc: Scene, it: Item) -> None:
    if not sc.sun[2] or it.shadow is None:
        return
    cam = sc.cam
    wd, ht = it.shadow
    dx, dz = sc.sun[0] * ht, sc.sun[1] * ht
    x, z = it.x, it.z
    pts = [
        cam.p(x - wd / 2, 0, z),
        cam.p(x + wd / 2, 0, z),
        cam.p(x + wd / 2 + dx, 0, max(z + dz, 0.8)),
        cam.p(x - wd / 2 + dx, 0, max(z + dz, 0.8)),
    ]
    cv.shade(pts, (0, 0, 15, sc.sun[2]))


@lru_cache(maxsize=1)
def _noise_tile() -> npt.NDArray[np.int16]:
    return np.clip(np.random.default_rng(12345).normal(0, 1, (1024, 1024, 1)) * 16, -64, 64).astype(np.int16)


def _finish(rng: Rng, img: Image.Image, dr: bool = False) -> Image.Image:
    """Global lighting (gain, contrast, gamma, tint), and sometimes sensor noise and blur (more of each with dr)."""
    gain = rng.uniform(0.4, 1.4) if dr else rng.uniform(0.55, 1.25)
    contrast = rng.uniform(0.6, 1.3) if dr else rng.uniform(0.75, 1.2)
    gamma = rng.uniform(0.7, 1.4) if dr else rng.uniform(0.8, 1.25)
    v = np.arange(256, dtype=np.float32) / 255.0
    base = ((v**gamma - 0.5) * contrast + 0.5) * gain
    lut: list[int] = []
    for tint in rng.uniform(0.86, 1.14, 3) if dr else rng.uniform(0.95, 1.05, 3):
        lut += np.clip(base * tint * 255.0 + 0.5, 0, 255).astype(np.uint8).tolist()
    img = img.point(lut)
    if rng.random() < 0.35:
        w, h = img.size
        tile = _noise_tile()
        oy, ox = int(rng.integers(0, 1024 - min(h, 1024) + 1)), int(rng.integers(0, 1024 - min(w, 1024) + 1))
        sigma = rng.uniform(0.1, 0.5)
        if h <= 1024 and w <= 1024:
            arr = np.asarray(img, dtype=np.int16) + (tile[oy : oy + h, ox : ox + w] * sigma).astype(np.int16)
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.15:
        img = img.filter(ImageFilter.BoxBlur(rng.uniform(0.4, 1.0)))
    if dr and rng.random() < 0.25:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.5)))
    if dr and rng.random() < 0.15:  # horizontal motion blur
        img = img.filter(ImageFilter.Kernel((5, 5), [0.0] * 10 + [0.2] * 5 + [0.0] * 10))
    return img


def _occluders(cv: Canvas, rng: Rng) -> None:
    """Unlabelled foreground things in front of everything: a near pole, foliage, a bonnet, a passing car's flank."""
    w, h = cv.w, cv.h
    cv.begin(0)
    for _ in range(int(rng.integers(1, 4))):
        kind = _choice(rng, ("pole", "foliage", "bonnet", "flank"))
        col = _grey(rng, 20, 200) if kind != "foliage" else _pick(rng, FOLIAGE, 15)
        if kind == "pole":
            x, pw = rng.uniform(0, w), rng.uniform(0.02, 0.08) * w
            cv.rect(x, 0, x + pw, h, col)
        elif kind == "foliage":
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h * 0.6), rng.uniform(0.06, 0.2) * w
            for _ in range(int(rng.integers(3, 8))):
                dx, dy, rr = rng.normal(0, r * 0.6), rng.normal(0, r * 0.4), r * rng.uniform(0.3, 0.7)
                cv.ellipse(cx + dx - rr, cy + dy - rr, cx + dx + rr, cy + dy + rr, _jit(rng, col, 12))
        elif kind == "bonnet":
            y = h * rng.uniform(0.85, 0.97)
            cv.poly([(0, h), (0, y + 0.03 * h), (w * 0.3, y), (w * 0.7, y), (w, y + 0.03 * h), (w, h)], col)
        else:
            x0 = w * (rng.uniform(-0.2, 0.1) if rng.random() < 0.5 else rng.uniform(0.75, 1.0))
            y0, y1 = h * rng.uniform(0.35, 0.6), h * rng.uniform(0.8, 1.0)
            cv.rect(x0, y0, x0 + w * rng.uniform(0.1, 0.3), y1, col)


Obj = tuple[int, int, tuple[int, int, int, int], int]  # class, mask id, drawn box, drawn pixels


@dataclass
class Drawn:
    """One rendered scene before labelling: the image, its object-id mask and the labelled objects drawn."""

    img: Image.Image
    mask: Image.Image
    objs: list[Obj]
    scene: Scene


def _labels(mask: Image.Image, objs: Sequence[Obj], scale: float = 1.0) -> list[Label]:
    """YOLO labels from the visible pixels of each object in the mask (scale: mask area / drawn area)."""
    w, h = mask.size
    ids = np.asarray(mask)
    ys, xs = np.nonzero(ids)
    v = ids[ys, xs]
    count = np.bincount(v, minlength=256)
    lo_x, lo_y = np.full(256, w), np.full(256, h)
    hi_x, hi_y = np.full(256, -1), np.full(256, -1)
    np.minimum.at(lo_x, v, xs)
    np.minimum.at(lo_y, v, ys)
    np.maximum.at(hi_x, v, xs)
    np.maximum.at(hi_y, v, ys)
    labels: list[Label] = []
    for cls, oid, _box, n0 in objs:
        if count[oid] < max(6, MIN_VISIBLE * n0 * scale):
            continue
        bx0, bx1, by0, by1 = int(lo_x[oid]), int(hi_x[oid]) + 1, int(lo_y[oid]), int(hi_y[oid]) + 1
        if bx1 - bx0 < MIN_BOX_PX or by1 - by0 < MIN_BOX_PX:
            continue
        labels.append((cls, (bx0 + bx1) / 2 / w, (by0 + by1) / 2 / h, (bx1 - bx0) / w, (by1 - by0) / h))
    return labels


def _render(rng: Rng, size: tuple[int, int], roadwork: bool, force: bool, dr: bool = False) -> Drawn:
    w, h = size
    sc = _make_scene(rng, w, h, dr)
    img, hor, sky = _sky(rng, sc.cam)
    cv = Canvas(img, sc.cam, rng)
    cv.light = 1.0 if sc.sun[0] > 0 else -1.0
    _background(cv, sc, hor, sky)
    if roadwork:
        _plan_roadwork(sc, rng, force)
    if not force:
        _plan_distractors(sc, rng, roadwork)
    for g in sc.ground:
        g(cv)
    sc.items.sort(key=lambda it: -it.z)
    objs: list[Obj] = []
    for it in sc.items:
        _cast_shadow(cv, sc, it)
        if it.cls >= 0 and len(objs) < 250:
            oid = len(objs) + 1
            cv.begin(oid)
            it.fn(cv, it.x, it.z, **it.kw)
            box = cv.bounds()
            if box is not None:
                n0 = cv.mask.crop(box).histogram()[oid]
                if n0:
                    objs.append((it.cls, oid, box, n0))
        else:
            cv.begin(0)
            it.fn(cv, it.x, it.z, **it.kw)
    if sc.dr and rng.random() < 0.35:
        _occluders(cv, rng)
    img = _finish(rng, img, sc.dr)
    mask = cv.mask
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        objs = [(c, o, (w - b[2], b[1], w - b[0], b[3]), n) for c, o, b, n in objs]
    return Drawn(img, mask, objs, sc)


def _draw(rng: Rng, size: tuple[int, int], roadwork: bool | None, dr: bool) -> tuple[Drawn, list[Label], bool]:
    if roadwork is None:
        roadwork = bool(rng.random() < 0.5)
    drawn = _render(rng, size, roadwork, force=False, dr=dr)
    labels = _labels(drawn.mask, drawn.objs)
    attempt = 0
    while roadwork and not labels:
        attempt += 1
        drawn = _render(rng, size, roadwork, force=attempt >= 3, dr=dr)
        labels = _labels(drawn.mask, drawn.objs)
    return drawn, labels, roadwork


def render_scene(
    rng: np.random.Generator, size: tuple[int, int] = (640, 480), roadwork: bool | None = None, randomize: bool = False
) -> tuple[Image.Image, list[tuple[int, float, float, float, float]], bool]:
    """Draw one street scene. Returns (RGB image, YOLO labels (cls, xc, yc, w, h) normalised, is_roadwork).

    A roadwork scene always has at least one label; a non-roadwork scene never has any. randomize turns on the
    training generator's domain randomization (camera, device looks, look-alikes, occluders, lighting, blur)."""
    drawn, labels, roadwork = _draw(rng, size, roadwork, randomize)
    return drawn.img, labels, roadwork


def render_scene_facts(
    rng: np.random.Generator, size: tuple[int, int] = (640, 480), roadwork: bool | None = None
) -> tuple[Image.Image, list[Label], bool, list[tuple[int, float, float]]]:
    """`render_scene` (the same draws from rng, the same output) plus the scene's lane closures (lane, z0, z1)."""
    drawn, labels, roadwork = _draw(rng, size, roadwork, False)
    return drawn.img, labels, roadwork, list(drawn.scene.closures)


def render_scene_augmented(
    rng: np.random.Generator, size: tuple[int, int] = (640, 480), roadwork: bool | None = None, randomize: bool = True
) -> tuple[Image.Image, list[Label], bool]:
    """`render_scene`, then the StreetVision augmentation (224x224), with labels moved by the same geometry.

    The object-id mask goes through the same rotation, crop and flips (nearest neighbour), so each box is still
    the tight box of the object's visible pixels. A roadwork scene may lose every label to the crop."""
    drawn, _labels_full, roadwork = _draw(rng, size, roadwork, randomize)
    img, mask, area = _augment(rng, drawn.img, None, drawn.mask)
    assert mask is not None
    return img, _labels(mask, drawn.objs, scale=224 * 224 / area), roadwork


# -------------------------------------------------------------------------------------------- validator augmentation
def augment_streetvision(rng: np.random.Generator, image: Image.Image, level: int | None = None) -> Image.Image:
    """The StreetVision validator's augmentation: level 0-3 with 25 % each (or the given level); 224x224 RGB out.

    0: centre square crop. 1-3: rotation up to +-20 deg, random resized crop (20-100 % of the area), random h/v flips.
    2-3 add saturation / contrast change, JPEG re-compression (quality 30-90), Gaussian noise and Gaussian blur
    (level 3 stronger)."""
    return _augment(rng, image, level, None)[0]


def _augment(
    rng: Rng, image: Image.Image, level: int | None, mask: Image.Image | None
) -> tuple[Image.Image, Image.Image | None, int]:
    """augment_streetvision, also moving an object-id mask through its geometry; returns (image, mask, crop area)."""
    img = image.convert("RGB")
    if level is None:
        level = int(rng.integers(4))
    out = (224, 224)
    w, h = img.size
    nearest = Image.Resampling.NEAREST
    if level == 0:
        s = min(w, h)
        x0, y0 = (w - s) // 2, (h - s) // 2
        box0 = (x0, y0, x0 + s, y0 + s)
        small = mask.resize(out, nearest, box=box0) if mask is not None else None
        return img.resize(out, Image.Resampling.BICUBIC, box=box0), small, s * s
    angle = rng.uniform(-20, 20)
    img = img.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    if mask is not None:
        mask = mask.rotate(angle, resample=nearest, fillcolor=0)
    box: tuple[int, int, int, int] | None = None
    for _ in range(10):
        area = w * h * rng.uniform(0.2, 1.0)
        ar = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            box = (x0, y0, x0 + cw, y0 + ch)
            break
    if box is None:
        s = min(w, h)
        box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    img = img.resize(out, Image.Resampling.BILINEAR, box=box)
    if mask is not None:
        mask = mask.resize(out, nearest, box=box)
    for flip in (Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM):
        if rng.random() < 0.5:
            img = img.transpose(flip)
            mask = mask.transpose(flip) if mask is not None else None
    if level >= 2:
        strong = level == 3
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.3, 1.7) if strong else rng.uniform(0.6, 1.4))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.5, 1.5) if strong else rng.uniform(0.7, 1.3))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(30, 61) if strong else rng.integers(50, 91)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        sigma = rng.uniform(6, 16) if strong else rng.uniform(2, 7)
        arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, sigma, (224, 224, 3)).astype(np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.0) if strong else rng.uniform(0.3, 1.0)))
    return img, mask, (box[2] - box[0]) * (box[3] - box[1])


# --------------------------------------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class Recipe:
    """How a dataset's images are drawn: domain randomization, the StreetVision-augmented share, JPEG quality."""

    randomize: bool = False
    augment: float = 0.0  # fraction of images passed through augment_streetvision (labels follow the geometry)
    quality: tuple[int, int] = (90, 90)  # JPEG quality, drawn per image from this range (inclusive)


def _write_one(args: tuple[Path, Path, int, int, int, tuple[int, int], Recipe]) -> tuple[list[int], bool]:
    img_dir, lbl_dir, seed, split_id, i, size, recipe = args
    rng = np.random.default_rng([seed, split_id, i])
    if recipe.augment and rng.random() < recipe.augment:
        img, labels, rw = render_scene_augmented(rng, size, randomize=recipe.randomize)
    else:
        img, labels, rw = render_scene(rng, size, randomize=recipe.randomize)
    lo, hi = recipe.quality
    quality = lo if lo == hi else int(rng.integers(lo, hi + 1))
    img.save(img_dir / f"{i:06d}.jpg", "JPEG", quality=quality)
    text = "".join(f"{c} {xc:.6f} {yc:.6f} {bw:.6f} {bh:.6f}\n" for c, xc, yc, bw, bh in labels)
    (lbl_dir / f"{i:06d}.txt").write_text(text)
    return [lab[0] for lab in labels], rw


def write_dataset(
    out_dir: Path,
    n_train: int,
    n_val: int,
    seed: int = 0,
    size: tuple[int, int] = (640, 480),
    jpeg_quality: int = 90,
    workers: int = 1,
    recipe: Recipe | None = None,
) -> Path:
    """Write an ultralytics detection dataset (images/, labels/, data.yaml, meta.json); returns data.yaml's path.

    Image i of a split depends only on (seed, split, i), so the output is the same for any number of workers.
    recipe (default: plain scenes at jpeg_quality) turns on domain randomization and StreetVision augmentation."""
    out = Path(out_dir).resolve()
    recipe = recipe or Recipe(quality=(jpeg_quality, jpeg_quality))
    meta: dict[str, Any] = {"seed": seed, "size": list(size), "jpeg_quality": list(recipe.quality),
                            "randomize": recipe.randomize, "augment": recipe.augment,
                            "classes": list(CLASSES)}  # fmt: skip
    counts: dict[str, dict[str, int]] = {}
    images: dict[str, int] = {}
    roadwork: dict[str, int] = {}
    for split_id, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        img_dir, lbl_dir = out / "images" / split, out / "labels" / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*img_dir.glob("*.jpg"), *lbl_dir.glob("*.txt"), *(out / "labels").glob("*.cache")]:
            stale.unlink()
        jobs = [(img_dir, lbl_dir, seed, split_id, i, size, recipe) for i in range(n)]
        if workers > 1 and n > 1:
            with ProcessPoolExecutor(workers) as pool:
                results = list(pool.map(_write_one, jobs, chunksize=16))
        else:
            results = [_write_one(j) for j in jobs]
        per = [0] * len(CLASSES)
        for classes, _rw in results:
            for c in classes:
                per[c] += 1
        counts[split] = {name: per[i] for i, name in enumerate(CLASSES)}
        images[split] = n
        roadwork[split] = sum(1 for _c, rw in results if rw)
    total = sum(images.values())
    meta["images"] = images
    meta["boxes"] = {s: sum(c.values()) for s, c in counts.items()}
    meta["counts"] = counts
    meta["roadwork_images"] = roadwork
    meta["roadwork_fraction"] = {s: round(roadwork[s] / images[s], 4) if images[s] else 0.0 for s in images}
    meta["roadwork_fraction"]["all"] = round(sum(roadwork.values()) / total, 4) if total else 0.0
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    lines = [f"path: {out}", "train: images/train", "val: images/val", f"nc: {len(CLASSES)}", "names:"]
    lines += [f"  {i}: {name}" for i, name in enumerate(CLASSES)]
    data = out / "data.yaml"
    data.write_text("\n".join(lines) + "\n")
    return data


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.synth", description="Write a synthetic roadwork YOLO dataset.")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--train", type=int, default=1000)
    p.add_argument("--val", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--quality", type=int, default=90, help="JPEG quality")
    p.add_argument("--workers", type=int, default=1, help="processes (output is identical for any count)")
    p.add_argument("--randomize", action="store_true", help="domain randomization (the training recipe)")
    p.add_argument("--augment", type=float, default=0.0, help="fraction given the StreetVision augmentation")
    p.add_argument("--min-quality", type=int, default=0, help="JPEG quality drawn from [this, --quality] per image")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    recipe = Recipe(a.randomize, a.augment, (a.min_quality or a.quality, a.quality))
    data = write_dataset(a.out_dir, a.train, a.val, a.seed, (a.width, a.height), a.quality, a.workers, recipe)
    dt = time.perf_counter() - t0
    meta = json.loads((data.parent / "meta.json").read_text())
    n = a.train + a.val
    print(f"wrote {n} images to {data.parent} in {dt:.1f} s ({n / dt:.0f} images/s, {a.workers} worker(s))")
    for split in ("train", "val"):
        frac, boxes = meta["roadwork_fraction"][split], meta["boxes"][split]
        print(f"  {split}: {meta['images'][split]} images, {frac:.0%} roadwork, {boxes} boxes")
        print("    " + ", ".join(f"{k}={v}" for k, v in meta["counts"][split].items()))
    print(f"data: {data}")


if __name__ == "__main__":
    main()
