"""Regenerate gen/go/roadwork/v1 from protos/ (python scripts/gen_go.py [--check]).

Needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH (`make go-env`: Debian's protobuf-compiler
3.21, protoc-gen-go 1.28.1, protoc-gen-go-grpc 1.0); --check fails when the committed code differs.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "gen" / "go"
PACKAGE = Path("roadwork") / "v1"


def generate(out: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos" / PACKAGE).glob("*.proto"))
    for tool in ("protoc", "protoc-gen-go", "protoc-gen-go-grpc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH: run `make go-env`")
    args = ["protoc", f"-I{ROOT / 'protos'}", f"--go_out={out}", f"--go-grpc_out={out}"]
    args += ["--go_opt=paths=source_relative", "--go-grpc_opt=paths=source_relative", *protos]
    subprocess.run(args, check=True)


def main() -> None:
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            fresh = {p.relative_to(tmp) for p in Path(tmp).rglob("*.go")}
            kept = {p.relative_to(OUT) for p in (OUT / PACKAGE).glob("*.go")}
            stale = sorted(str(p) for p in fresh | kept if p not in fresh or p not in kept)
            stale += sorted(str(p) for p in fresh & kept if not filecmp.cmp(Path(tmp) / p, OUT / p, shallow=False))
        if stale:
            raise SystemExit(f"gen/go is stale ({', '.join(stale)}): run python scripts/gen_go.py")
        print("gen/go is up to date")
        return
    shutil.rmtree(OUT / PACKAGE, ignore_errors=True)
    generate(OUT)
    print(f"generated {OUT / PACKAGE}")


if __name__ == "__main__":
    main()
