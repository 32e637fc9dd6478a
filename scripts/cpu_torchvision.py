"""Makes PyPI's torchvision import in the vLLM (CPU) engine venv, whose torch is a +cpu build.

vLLM's Qwen2-VL support imports transformers' image processors, which need torchvision. No CPU
torchvision wheel for that torch is on PyPI, and the one there cannot load its compiled ops next to
torch+cpu ("operator torchvision::nms does not exist"), which fails `import torchvision` in its op
registrations. The image transforms the processors use need none of those ops, so this skips the
registrations when the ops are absent (`extension._has_ops()`). Idempotent.

    python scripts/cpu_torchvision.py VENV_PYTHON
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OLD = "    _autograd_registrations,\n    _meta_registrations,\n"
NEW = "if extension._has_ops():  # roadwork-router: skipped where the compiled ops cannot load (torch+cpu)\n"
NEW += "    from torchvision import _autograd_registrations, _meta_registrations  # noqa: F401\n"
ANCHOR = "from torchvision import (\n"


def patch(init: Path) -> bool:
    """Rewrite torchvision/__init__.py once; False when it was already patched."""
    text = init.read_text()
    if "roadwork-router" in text:
        return False
    if OLD not in text or ANCHOR not in text:
        raise SystemExit(f"{init}: unexpected layout; this torchvision version is not supported by the patch")
    text = text.replace(OLD, "").replace(ANCHOR, NEW + ANCHOR, 1)
    init.write_text(text)
    return True


def main() -> None:
    python = sys.argv[1]
    # The package's location without importing it (importing is what fails).
    where = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('torchvision').origin)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    changed = patch(Path(where))
    subprocess.run([python, "-c", "import torchvision.transforms.v2"], check=True)
    print(f"{where}: {'patched' if changed else 'already patched'}; torchvision imports")


if __name__ == "__main__":
    main()
