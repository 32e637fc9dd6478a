"""The Engine protocol and the request/response types every engine speaks."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ImagePart:
    """An image attached to a user message, sent as an OpenAI `image_url` data URL to VLM engines.

    `width` and `height` describe `data` when known (0: unknown); `sha256` is the digest of the image as
    the client sent it ("" unknown), which a resized copy keeps: it names the picture, not these bytes."""

    data: bytes
    mime: str  # "image/jpeg", "image/png" or "image/webp"
    width: int = 0
    height: int = 0
    sha256: str = ""


@dataclass(frozen=True)
class Message:
    """One chat message; `image` is only sent to engines configured as vision-capable."""

    role: Role
    text: str
    image: ImagePart | None = None


@dataclass(frozen=True)
class ResponseSchema:
    """A JSON schema the answer must follow (guided decoding where the engine supports it)."""

    name: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class GenerationRequest:
    """What the router asks an engine to generate."""

    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float
    request_id: str = ""
    priority: int = 0  # lower runs first, where the server schedules by priority (interactive 0, bulk 1)
    response_schema: ResponseSchema | None = None
    # The pixel budget for this request's images, for engines that take per-request processor options.
    pixel_budget: tuple[int, int] | None = None  # (min_pixels, max_pixels)
    # The last message is a partial answer (role "assistant") the engine continues, not a finished turn.
    continue_final: bool = False
    # W3C trace context headers (traceparent, tracestate) for engine servers that join the trace.
    trace_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Usage:
    """Token counts an engine reported for one generation."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    image_tokens: int = 0  # prompt tokens the engine spent on images (0 when it does not report them)


@dataclass(frozen=True)
class Delta:
    """A piece of generated text, and the tokens it took (the engine's count where it streams one, else 1)."""

    text: str
    tokens: int = 1


@dataclass(frozen=True)
class Finished:
    """The last item of a generation: why it stopped, and its usage."""

    finish_reason: str
    usage: Usage
    model: str
    notices: tuple[str, ...] = field(default_factory=tuple)


GenerationEvent = Delta | Finished


@runtime_checkable
class Engine(Protocol):
    """A text (or vision-language) generation backend reached by the router."""

    @property
    def name(self) -> str:
        """Replica identifier reported to clients (a URL, or "embedded")."""
        ...

    @property
    def kind(self) -> str:
        """Engine type reported to clients: "openai_http" or "embedded"."""
        ...

    @property
    def vision(self) -> bool:
        """Whether user messages may carry images."""
        ...

    @property
    def context_tokens(self) -> int:
        """The model's context length in tokens (0: unknown)."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream deltas, then exactly one `Finished`; raises `EngineError` on failure.

        Closing the iterator early (client cancel) must abort the generation on the engine.
        """
        ...

    async def health(self) -> bool:
        """Whether the engine can take requests now."""
        ...

    async def warmup(self) -> None:
        """Load and exercise the engine once so the first real request is not slow."""
        ...

    async def close(self) -> None:
        """Release connections, threads and memory."""
        ...
