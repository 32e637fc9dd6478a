"""Draws the bundled sample image (a street with a lane closed by cones, barriers and a sign)."""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw


def draw(width: int = 640, height: int = 480) -> Image.Image:
    img = Image.new("RGB", (width, height), (135, 185, 230))  # sky
    d = ImageDraw.Draw(img)
    horizon = int(height * 0.42)
    d.rectangle([0, horizon, width, height], fill=(95, 150, 80))  # verges
    d.polygon(
        [(width * 0.45, horizon), (width * 0.55, horizon), (width * 0.98, height), (width * 0.02, height)],
        fill=(70, 70, 75),
    )  # road
    for i in range(8):  # dashed centre line
        y0 = horizon + (height - horizon) * (i / 8) ** 1.6
        y1 = horizon + (height - horizon) * ((i + 0.5) / 8) ** 1.6
        d.line([(width / 2, y0), (width / 2, y1)], fill=(240, 240, 240), width=max(1, int(1 + i)))
    for i, t in enumerate((0.25, 0.4, 0.55, 0.7, 0.85)):  # cones closing the right lane
        y = horizon + (height - horizon) * t
        x = width / 2 + (width * 0.45) * t * 0.55
        s = 6 + 30 * t
        d.polygon([(x - s / 2, y), (x + s / 2, y), (x, y - s * 1.6)], fill=(250, 110, 20))
        d.rectangle([x - s * 0.3, y - s * 0.8, x + s * 0.3, y - s * 0.6], fill=(245, 245, 245))
        if i % 2:
            d.rectangle([x + s * 0.8, y - s * 0.9, x + s * 2.6, y - s * 0.4], fill=(240, 120, 20))  # barrier
            for k in range(4):
                d.line(
                    [(x + s * (0.9 + 0.45 * k), y - s * 0.9), (x + s * (1.2 + 0.45 * k), y - s * 0.4)],
                    fill=(250, 250, 250),
                    width=2,
                )
    sx, sy = int(width * 0.8), int(horizon + 40)  # diamond work-zone sign
    d.line([(sx, sy + 30), (sx, sy + 90)], fill=(60, 60, 60), width=4)
    d.polygon([(sx, sy - 30), (sx + 30, sy), (sx, sy + 30), (sx - 30, sy)], fill=(250, 140, 0), outline=(0, 0, 0))
    d.text((sx - 14, sy - 6), "WORK", fill=(0, 0, 0))
    return img


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "router/assets/sample_roadwork.jpg")
    draw().save(out, quality=90)
    print(out, out.stat().st_size, "bytes")
