"""The Engine protocol and the request/response types every engine speaks."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ImagePart:
    """An image attached to a user message, sent as an OpenAI `image_url` data URL to VLM engines."""

    data: bytes
    mime: str  # "image/jpeg", "image/png" or "image/webp"


@dataclass(frozen=True)
class Message:
    """One chat message; `image` is only sent to engines configured as vision-capable."""

    role: Role
    text: str
    image: ImagePart | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What the router asks an engine to generate."""

    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float
    request_id: str = ""
    priority: int = 0  # lower runs first, where the server schedules by priority (interactive 0, bulk 1)


@dataclass(frozen=True)
class Usage:
    """Token counts an engine reported for one generation."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True)
class Delta:
    """A piece of generated text."""

    text: str


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
