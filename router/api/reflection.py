"""Server reflection that serves the proto's comments: descriptors with the source_code_info protoc kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

import router._proto

_PROTO_ROOT = Path(router._proto.__file__).parent


def _source_infos() -> dict[str, descriptor_pb2.SourceCodeInfo]:
    """Each generated file's comments, from the `*_descriptor.binpb` that scripts/gen_proto.py writes."""
    infos = {}
    for path in _PROTO_ROOT.rglob("*_descriptor.binpb"):
        for f in descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file:
            infos[f.name] = f.source_code_info
    return infos


class _Documented:
    """A FileDescriptor as grpcio-reflection reads it, whose CopyToProto also copies the comments
    (the Python runtime's own drops source_code_info)."""

    def __init__(self, fd: descriptor.FileDescriptor, infos: dict[str, descriptor_pb2.SourceCodeInfo]) -> None:
        self._fd = fd
        self._infos = infos

    @property
    def name(self) -> str:
        return str(self._fd.name)

    @property
    def dependencies(self) -> list[_Documented]:
        return [_Documented(d, self._infos) for d in self._fd.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        self._fd.CopyToProto(proto)
        if self._fd.name in self._infos:
            proto.source_code_info.CopyFrom(self._infos[self._fd.name])


class DocumentedPool:
    """The default descriptor pool for `enable_server_reflection(..., pool=)`, its files with comments."""

    def __init__(self, pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._pool = pool or descriptor_pool.Default()
        self._infos = _source_infos()

    def FindFileByName(self, name: str) -> _Documented:
        return _Documented(self._pool.FindFileByName(name), self._infos)

    def FindFileContainingSymbol(self, symbol: str) -> _Documented:
        return _Documented(self._pool.FindFileContainingSymbol(symbol), self._infos)

    def __getattr__(self, name: str) -> Any:  # FindMessageTypeByName, FindAllExtensions...: the pool's own
        return getattr(self._pool, name)
