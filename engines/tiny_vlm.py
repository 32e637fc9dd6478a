"""Builds small Qwen2-VL checkpoints locally (random init, no download): model, tokenizer, processor.

Qwen2-VL is the vision-language architecture vLLM, SGLang and LMDeploy all serve. The tokenizer is a
byte-level BPE trained here with Qwen2's pre-tokenizer, followed by the architecture's special tokens
(their ids are the config's `image_token_id`, `video_token_id`, `vision_start_token_id`); the chat
template is Qwen2-VL's. `TINY` is the shape tests serve on vLLM's CPU build (head size 32: its CPU
attention rejects 16); `training/vlm.py` trains a larger shape into the demo model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engines.tiny_model import default_cache_dir, save_atomically

BUILD_VERSION = "tiny-qwen2vl-v1"
SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen2-VL-Instruct's chat template (system turn added when missing), as its processor ships it.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen2's pre-tokenizer split (tokenizer.json of the Qwen2 family).
_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
PATCH = 14  # pixels per patch side
MERGE = 2  # patches per merged token side: one image token per 28 x 28 pixels
_CORPUS = (
    "Is there roadwork here? Yes, there is roadwork. No, there is no roadwork. How many cones are there? "
    "cones drums barricades barriers vertical panels arrow boards work signs workers work vehicles lane closed "
    "Detection: roadwork likely (P(roadwork) = 0.93, image 640x480). Objects found: 3 cone (max conf 0.88). "
    "Detector votes: yolo11n-roadwork: yes (0.91); yolov8n-roadwork: no (0.12). active inactive none"
)


@dataclass(frozen=True)
class VLMShape:
    """Sizes of a Qwen2-VL checkpoint; pixels bound the processor's resize (one token per 28 x 28)."""

    vocab: int = 2048
    hidden: int = 128
    intermediate: int = 256
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_depth: int = 2
    vision_dim: int = 64
    vision_heads: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 1280 * 28 * 28
    context: int = 16384

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def mrope_section(self) -> list[int]:
        """Split of head_dim / 2 rotary frequencies over (time, height, width), as Qwen2-VL does (16:24:24)."""
        half = self.head_dim // 2
        t = half // 4
        h = (half - t) // 2
        return [t, h, half - t - h]


TINY = VLMShape()


def train_tokenizer(vocab: int, corpus: Iterable[str]) -> object:
    """A byte-level BPE (Qwen2's split, the full byte alphabet) with Qwen2-VL's special tokens after it."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab - len(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    return tok


def _config(shape: VLMShape, ids: dict[str, int]) -> object:
    from transformers import Qwen2VLConfig

    text = {
        "vocab_size": shape.vocab,
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "max_position_embeddings": shape.context,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": shape.mrope_section},
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    vision = {
        "depth": shape.vision_depth,
        "embed_dim": shape.vision_dim,
        "num_heads": shape.vision_heads,
        "hidden_size": shape.hidden,
        "mlp_ratio": 4,
        "patch_size": PATCH,
        "spatial_merge_size": MERGE,
        "temporal_patch_size": 2,
        "in_channels": 3,
    }
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_processor(shape: VLMShape, tokenizer_object: object) -> object:
    """Qwen2-VL's processor (image and video processors, the tokenizer, the chat template)."""
    from transformers import Qwen2Tokenizer, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    tok = Qwen2Tokenizer(tokenizer_object=tokenizer_object, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.model_max_length = shape.context
    pixels = {"shortest_edge": shape.min_pixels, "longest_edge": shape.max_pixels}
    image = Qwen2VLImageProcessor(size=pixels, patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2)
    video = Qwen2VLVideoProcessor(size=pixels, patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2)
    return Qwen2VLProcessor(  # type: ignore[no-untyped-call]
        image_processor=image, tokenizer=tok, video_processor=video, chat_template=CHAT_TEMPLATE
    )


def build_vlm(out: Path, shape: VLMShape = TINY, *, corpus: Iterable[str] = (), seed: int = 0) -> Path:
    """Build a random-weight Qwen2-VL of `shape` into `out` (atomically); an existing build is reused."""
    if (out / "config.json").exists() and (out / "preprocessor_config.json").exists():
        return out
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    lines = [*corpus] or [_CORPUS, "".join(chr(c) for c in range(32, 127))] * 20
    tok = train_tokenizer(shape.vocab, lines)
    ids = {s: tok.token_to_id(s) for s in SPECIALS}  # type: ignore[attr-defined]
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(_config(shape, ids))  # type: ignore[arg-type]
    processor = build_processor(shape, tok)

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)  # type: ignore[attr-defined]
        _legacy_processor_files(tmp, shape)
        _pin_generation(tmp, ids)
        engine_config_aliases(tmp)

    card = f"# {BUILD_VERSION}\nRandom weights, built locally by roadwork-router. Answers are placeholders.\n"
    return save_atomically(out, write, card)


def _legacy_processor_files(path: Path, shape: VLMShape) -> None:
    """preprocessor_config.json with min/max_pixels keys, for the older transformers the engines carry
    (SGLang 0.5.14 pins 5.8.1) and LMDeploy's own Qwen2-VL preprocessing. Newer transformers save the
    image processor inside processor_config.json; older ones already wrote preprocessor_config.json."""
    legacy_path, combined = path / "preprocessor_config.json", path / "processor_config.json"
    if legacy_path.exists():
        legacy = json.loads(legacy_path.read_text())
    else:
        legacy = dict(json.loads(combined.read_text())["image_processor"])
    legacy |= {"min_pixels": shape.min_pixels, "max_pixels": shape.max_pixels, "processor_class": "Qwen2VLProcessor"}
    legacy_path.write_text(json.dumps(legacy, indent=2) + "\n")


def engine_config_aliases(path: Path) -> None:
    """Add `vision_config.in_chans` to config.json: Qwen's own checkpoints carry it and SGLang 0.5.14's
    Qwen2-VL reads it (AttributeError otherwise); transformers 5 saves only `in_channels`."""
    config_path = path / "config.json"
    config = json.loads(config_path.read_text())
    vision = config["vision_config"]
    vision.setdefault("in_chans", vision.get("in_channels", 3))
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def _pin_generation(path: Path, ids: dict[str, int]) -> None:
    """Stop at <|im_end|> (or <|endoftext|>), greedy unless asked, in every engine that reads it."""
    gen = {"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]], "pad_token_id": ids["<|endoftext|>"]}
    (path / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")


def image_tokens(width: int, height: int) -> int:
    """Image tokens Qwen2-VL spends on an image already sized in multiples of 28 pixels."""
    side = PATCH * MERGE
    return (width // side) * (height // side)


def ensure_tiny_vlm(cache_dir: Path | None = None) -> Path:
    """The tiny random Qwen2-VL's directory, building it on first use."""
    return build_vlm((cache_dir or default_cache_dir()) / BUILD_VERSION)


if __name__ == "__main__":  # python -m engines.tiny_vlm [DIR]: build and print the path
    import sys

    print(build_vlm(Path(sys.argv[1])) if len(sys.argv) > 1 else ensure_tiny_vlm())
