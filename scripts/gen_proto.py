"""Regenerate router/_proto from protos/ (python scripts/gen_proto.py [--check])."""

from __future__ import annotations

import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "router" / "_proto"


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    # Only the project's own protos: google/rpc (vendored for other languages) comes from the
    # googleapis-common-protos package at run time.
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos" / "roadwork").rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{ROOT / 'protos'}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # The same files as descriptors with their comments (source_code_info), which the Python modules
    # leave out: server reflection serves these, so `grpcurl describe` shows the comments.
    for proto in protos:
        described = out / proto.replace(".proto", "_descriptor.binpb")
        if (
            protoc.main(
                ["protoc", f"-I{ROOT / 'protos'}", f"-I{include}", "--include_source_info", f"-o{described}", proto]
            )
            != 0
        ):
            raise SystemExit("protoc failed")
    for path in out.rglob("*.py"):  # generated imports are absolute (roadwork.v1); make them relative
        text = re.sub(r"^from roadwork\.v1 import", "from . import", path.read_text(), flags=re.M)
        path.write_text(text)
    for d in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (d / "__init__.py").touch()


def main() -> None:
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            stale = [
                str(p.relative_to(tmp))
                for p in [*Path(tmp).rglob("*.py*"), *Path(tmp).rglob("*.binpb")]
                if not (OUT / p.relative_to(tmp)).exists()
                or not filecmp.cmp(p, OUT / p.relative_to(tmp), shallow=False)
            ]
        if stale:
            raise SystemExit(f"router/_proto is stale ({', '.join(stale)}): run python scripts/gen_proto.py")
        print("router/_proto is up to date")
        return
    shutil.rmtree(OUT, ignore_errors=True)
    generate(OUT)
    print(f"generated {OUT}")


if __name__ == "__main__":
    main()
