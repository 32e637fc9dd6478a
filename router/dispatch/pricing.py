"""Cost estimates from a pool's price table (USD per 1k tokens)."""

from __future__ import annotations

from engines.base import Usage
from router.config import Price
from router.types import Cost


def estimate(price: Price, usage: Usage) -> Cost:
    """Prompt tokens served from cache are charged at `cached_prompt_per_1k` (default: the prompt rate)."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_rate = price.prompt_per_1k if price.cached_prompt_per_1k is None else price.cached_prompt_per_1k
    prompt = ((usage.prompt_tokens - cached) * price.prompt_per_1k + cached * cached_rate) / 1000
    return Cost(prompt_usd=prompt, completion_usd=usage.completion_tokens * price.completion_per_1k / 1000)
