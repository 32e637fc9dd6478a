"""Every message, field, oneof, enum, enum value, service and RPC of roadwork.v1 has a leading comment.

Only leading comments become Go doc comments (protoc-gen-go) and TSDoc; trailing ones are lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO = "roadwork/v1/router.proto"


def descriptor(tmp: Path) -> descriptor_pb2.FileDescriptorProto:
    """router.proto's descriptor, with its comments (source_code_info)."""
    out = tmp / "router.binpb"
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{ROOT / 'protos'}", f"-I{include}", "--include_source_info", f"-o{out}", PROTO]
    assert protoc.main(args) == 0
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return next(f for f in fds.file if f.name == PROTO)


def _message(
    m: descriptor_pb2.DescriptorProto, path: tuple[int, ...], name: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    for i, f in enumerate(m.field):
        yield (*path, 2, i), f"{name}.{f.name}"
    synthetic = {f.oneof_index for f in m.field if f.proto3_optional}  # `optional` fields' own oneofs
    for i, o in enumerate(m.oneof_decl):
        if i not in synthetic:
            yield (*path, 8, i), f"{name}.{o.name} (oneof)"
    for i, n in enumerate(m.nested_type):
        yield from _message(n, (*path, 3, i), f"{name}.{n.name}")
    for i, e in enumerate(m.enum_type):
        yield from _enum(e, (*path, 4, i), f"{name}.{e.name}")


def _enum(
    e: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...], name: str
) -> Iterator[tuple[tuple[int, ...], str]]:
    yield path, name
    for i, v in enumerate(e.value):
        yield (*path, 2, i), v.name


def elements(f: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[tuple[int, ...], str]]:
    """(source path, name) of every element that needs a comment (descriptor.proto's field numbers)."""
    for i, m in enumerate(f.message_type):
        yield from _message(m, (4, i), m.name)
    for i, e in enumerate(f.enum_type):
        yield from _enum(e, (5, i), e.name)
    for i, s in enumerate(f.service):
        yield (6, i), s.name
        for j, rpc in enumerate(s.method):
            yield (6, i, 2, j), f"{s.name}.{rpc.name}"


def test_every_element_has_a_leading_comment(tmp_path: Path) -> None:
    f = descriptor(tmp_path)
    leading = {tuple(loc.path) for loc in f.source_code_info.location if loc.leading_comments.strip()}
    missing = [name for path, name in elements(f) if path not in leading]
    assert not missing, f"{len(missing)} without a leading comment: {', '.join(missing)}"


def test_no_trailing_comments(tmp_path: Path) -> None:
    f = descriptor(tmp_path)
    trailing = [loc.path for loc in f.source_code_info.location if loc.trailing_comments.strip()]
    assert not trailing, f"trailing comments (not doc comments in Go): {trailing}"
