"""Regenerate gen/ts, the TypeScript declarations of roadwork.v1 (python scripts/gen_ts.py [--check]).

Uses proto-loader-gen-types from @grpc/proto-loader in tests/node (`make node-env`); the declarations
match @grpc/proto-loader's options keepCase, longs String, enums String, defaults and oneofs.
--check fails when the committed declarations differ.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "gen" / "ts"
TOOL = ROOT / "tests" / "node" / "node_modules" / ".bin" / "proto-loader-gen-types"
OPTIONS = ["--keepCase", "--longs=String", "--enums=String", "--defaults", "--oneofs", "--grpcLib=@grpc/grpc-js"]


def generate(out: Path) -> None:
    if not TOOL.exists():
        raise SystemExit(f"{TOOL} is missing: run `make node-env`")
    args = [str(TOOL), *OPTIONS, "-I", "protos", "-O", str(out), "roadwork/v1/router.proto"]
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            fresh = {p.relative_to(tmp) for p in Path(tmp).rglob("*.ts")}
            kept = {p.relative_to(OUT) for p in OUT.rglob("*.ts")}
            stale = sorted(str(p) for p in fresh ^ kept)
            stale += sorted(str(p) for p in fresh & kept if not filecmp.cmp(Path(tmp) / p, OUT / p, shallow=False))
        if stale:
            raise SystemExit(f"gen/ts is stale ({', '.join(stale)}): run python scripts/gen_ts.py")
        print("gen/ts is up to date")
        return
    shutil.rmtree(OUT, ignore_errors=True)
    generate(OUT)
    print(f"generated {OUT}")


if __name__ == "__main__":
    main()
