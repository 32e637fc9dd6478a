"""Builds the small placeholder chat model the project uses when no real model is configured.

A random-weight Llama (hidden 128, 2 layers, 4 heads of 32: vLLM's CPU attention accepts head size
32 but not 16) with a byte-level BPE tokenizer trained here on a small roadwork corpus and a chat
template. It takes a few seconds to build, needs no download, and answers gibberish: it exists to
exercise the real serving path (the embedded engine and a real vLLM server), not to answer questions.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

BUILD_VERSION = "tiny-llama-v2"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Long enough that a test can ask for a generation lasting many seconds (1 KiB of KV cache a token).
CONTEXT = 16384
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_WORDS = (
    "roadwork construction zone cone cones drum barrier barricade sign arrow board worker vest lane "
    "closed closure detour traffic street road highway shoulder merge left right ahead active "
    "inactive yes no the a is are there how many lanes image detections probability verdict "
    "object objects found detector question answer session follow up work crew excavator truck"
).split()


def default_cache_dir() -> Path:
    """Where built models live: $ROADWORK_CACHE_DIR, else ~/.cache/roadwork-router."""
    base = os.environ.get("ROADWORK_CACHE_DIR") or os.path.join(Path.home(), ".cache", "roadwork-router")
    return Path(base) / "models"


def _corpus() -> list[str]:
    """Deterministic training lines for the tokenizer."""
    lines = []
    for i, w in enumerate(_WORDS):
        nxt = _WORDS[(i * 7 + 3) % len(_WORDS)]
        lines.append(f"Is there {w} {nxt} in the image? The {w} is {nxt}, {i} objects found.")
    lines.append("".join(chr(c) for c in range(32, 127)))
    return lines * 20


def build_tiny_model(out: Path, *, vocab_size: int = 1024, seed: int = 0) -> Path:
    """Build the model into `out` (atomically) and return it; an existing build is reused."""
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=CONTEXT,
    )
    cfg = LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=32,
        max_position_embeddings=CONTEXT,
        eos_token_id=tok.token_to_id("<|im_end|>"),
        pad_token_id=tok.token_to_id("<|endoftext|>"),
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        hf_tok.save_pretrained(tmp)

    card = f"# {BUILD_VERSION}\nRandom weights, built locally by roadwork-router. Answers are placeholders.\n"
    return save_atomically(out, write, card)


def save_atomically(out: Path, write: Callable[[Path], None], card: str) -> Path:
    """Build into a temporary folder beside `out` (`write` fills it, then a model card), then rename it
    into place; when another process won the race, its build is kept."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    try:
        write(tmp)
        (tmp / "MODEL_CARD.md").write_text(card)
        try:
            tmp.rename(out)
        except OSError:  # another process won the race; keep its build
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def ensure_tiny_model(cache_dir: Path | None = None) -> Path:
    """The placeholder model's directory, building it on first use."""
    return build_tiny_model((cache_dir or default_cache_dir()) / BUILD_VERSION)


if __name__ == "__main__":  # python -m engines.tiny_model [DIR]: build and print the path
    import sys

    print(build_tiny_model(Path(sys.argv[1])) if len(sys.argv) > 1 else ensure_tiny_model())
