"""Request migration: an answer whose replica fails mid-stream continues on another replica.

The text already streamed is kept; the conversation plus that text, as an assistant message to
continue (`GenerationRequest.continue_final`), goes to another replica of the pool, or a later pool
of the request's kind serving the same model, for the tokens left. The caller relays the new stream
after the old one, so the client sees one answer. docs/resilience.md says what greedy decoding keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engines.base import GenerationRequest, Message
from router.dispatch.pools import Pool, Replica
from router.types import Migration


@dataclass
class Answer:
    """The text streamed so far across every replica that worked on one answer, and its moves."""

    request: GenerationRequest  # as the dispatcher got it (before any pool fitted its image)
    text: list[str] = field(default_factory=list)
    tokens: int = 0
    migrations: list[Migration] = field(default_factory=list)

    def add(self, text: str, tokens: int) -> None:
        """Record a delta relayed to the client."""
        self.text.append(text)
        self.tokens += tokens

    def continuation(self) -> GenerationRequest:
        """The request that continues this answer: the partial answer as a final assistant message,
        at most the tokens left."""
        partial = "".join(self.text)
        return replace(
            self.request,
            messages=(*self.request.messages, Message("assistant", partial)),
            max_tokens=max(1, self.request.max_tokens - self.tokens),
            continue_final=True,
        )

    def moved(self, failed: Replica, pool: Pool, to: Replica) -> None:
        """Record a move from `failed` to `to` (of `pool`) with what had been streamed."""
        chars = sum(len(t) for t in self.text)
        self.migrations.append(Migration(failed.name, pool.name, to.name, self.tokens, chars))


def can_continue(replica: Replica) -> bool:
    """Whether the replica's server continues a final assistant message (vLLM, SGLang, LMDeploy)."""
    return replica.server is not None and replica.server.continue_fields is not None


def migrates(pool: Pool, answer: Answer) -> bool:
    """Whether a failure of `pool` mid-answer is migrated: switched on, some text streamed, and no
    response schema (guided decoding would restart its grammar at the continuation)."""
    return pool.config.migrate_on_failure and bool(answer.text) and answer.request.response_schema is None


def targets(failed: Pool, order: list[Pool]) -> list[Pool]:
    """Where an answer that failed on `failed` may continue: its own pool, then the pools after it in
    the kind's order that serve the same configured model and migrate too."""
    model = failed.config.model
    later = order[order.index(failed) + 1 :] if failed in order else []
    same = [p for p in later if model and p.config.model == model and p.config.migrate_on_failure]
    return [failed, *same]
