"""Draws the bundled sample image: a procedurally drawn street scene (training/synth.py) with a lane
closed by cones beside a work truck and two workers, the kind of scene the demo detectors and the
demo VLM were trained on, so the quick start's answers can be checked against the picture.

    python scripts/make_sample_image.py [OUT]   (default router/assets/sample_roadwork.jpg)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.synth import render_scene_facts

SEED = (0x5A4D, 10502)  # found by drawing scenes until one showed a closure, cones, workers and a truck


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "router/assets/sample_roadwork.jpg")
    image, labels, roadwork, closures = render_scene_facts(np.random.default_rng(list(SEED)), (640, 480))
    assert roadwork and closures, "the sample must show a work zone with a closed lane"
    image.save(out, quality=90)
    print(out, out.stat().st_size, "bytes;", len(labels), "labelled objects")


if __name__ == "__main__":
    main()
