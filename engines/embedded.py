"""In-process transformers engine on the CPU: the quick start's default, no engine server needed.

A causal LM (the placeholder, or any text model) decodes token by token in this file's loop; a
vision-language model (a Qwen2-VL-family checkpoint, e.g. the bundled demo model) runs through its
processor and `generate()`, streaming through `_Emitter`, so the images in the messages reach it.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engines.base import Delta, Finished, GenerationEvent, GenerationRequest, Message, Usage
from engines.errors import EngineBadRequest, EngineUnavailable
from engines.tiny_model import ensure_tiny_model

PLACEHOLDER_NOTICE = (
    "answered by the embedded placeholder model (random weights built locally): the text is not a "
    "real answer; configure a real model (embedded.model in the config) or engine servers for real answers"
)
MODELS_DIR = Path(__file__).parent / "models"
DEMO_MODEL = "roadwork-vlm"  # engines/models/roadwork-vlm: the quick start's vision-language model
DEMO_NOTICE = (
    "answered by the demo vision-language model (6.6 M parameters, trained only on synthetic street scenes: "
    "engines/models/roadwork-vlm/MODEL_CARD.md); it has never seen a real photo, so do not trust it on one; "
    "point the config at a real model or engine servers for real answers"
)


def resolve_model(name: str) -> str:
    """A model reference as given: '' (the placeholder), a path, a bundled model's name, or a hub id."""
    if not name or Path(name).expanduser().exists():
        return str(Path(name).expanduser()) if name else ""
    bundled = MODELS_DIR / name
    return str(bundled) if (bundled / "config.json").exists() else name


# Temperatures under this decode greedily, as vLLM does (its _SAMPLING_EPS): logits divided by a
# denormal temperature (the fuzzer sent 1.4e-45) are inf, and sampling from their softmax raises.
GREEDY_BELOW = 1e-5
_DONE = object()


def is_vision_model(path: str) -> bool:
    """Whether the local checkpoint at `path` is a vision-language model (its config has a vision tower),
    read without transformers, so a pool knows before the model loads (`_load` decides for hub ids)."""
    config = Path(path) / "config.json"
    return config.exists() and "vision_config" in json.loads(config.read_text())


def processor_chat(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the HF processor's chat form: an image part before the turn's text. The demo VLM was
    trained on exactly this form (training/vlm_data.py), so it is one function for both."""
    out: list[dict[str, Any]] = []
    for m in messages:
        image: list[dict[str, Any]] = [{"type": "image"}] if m.image is not None else []
        out.append({"role": m.role, "content": [*image, {"type": "text", "text": m.text}]})
    return out


def _decoded_images(messages: Sequence[Message]) -> list[Any]:
    """The messages' images as RGB PIL images, in order."""
    from PIL import Image

    return [Image.open(io.BytesIO(m.image.data)).convert("RGB") for m in messages if m.image is not None]


class _Emitter:
    """A transformers streamer: decodes generated ids as they come and emits the new text."""

    def __init__(self, tokenizer: Any, emit: Callable[[Any], None]) -> None:
        self._tokenizer, self._emit = tokenizer, emit
        self._prompt_seen = False
        self._ids: list[int] = []
        self._sent = ""

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        self._ids.extend(int(t) for t in value.reshape(-1).tolist())
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if not text.endswith("\ufffd") and len(text) > len(self._sent):
            self._emit(Delta(text[len(self._sent) :]))
            self._sent = text

    def end(self) -> None:
        pass


class EmbeddedEngine:
    """A causal LM run in one worker thread; requests are served one at a time, in arrival order."""

    def __init__(self, model: str = "", *, device: str = "cpu", threads: int = 0) -> None:
        self._name = model or "embedded-placeholder"
        model = resolve_model(model)
        self._model_ref = model
        self._device = device
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-engine")
        self._model: Any = None
        self._tokenizer: Any = None
        self._processor: Any = None  # vision-language models only
        self._load_lock = asyncio.Lock()
        self._notices: tuple[str, ...] = (
            (PLACEHOLDER_NOTICE,) if not model else (DEMO_NOTICE,) if Path(model) == MODELS_DIR / DEMO_MODEL else ()
        )
        self._vision = bool(model) and is_vision_model(model)

    @property
    def name(self) -> str:
        return "embedded"

    @property
    def kind(self) -> str:
        return "embedded"

    @property
    def vision(self) -> bool:
        return self._vision

    @property
    def context_tokens(self) -> int:
        if self._model is None:
            return 0
        config = getattr(self._model.config, "text_config", self._model.config)
        return int(getattr(config, "max_position_embeddings", 0) or 0)

    @property
    def model(self) -> str:
        return self._name

    def _load(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        if self._threads:
            torch.set_num_threads(self._threads)
        path = self._model_ref or str(ensure_tiny_model())
        local = Path(path).exists()
        self._vision = hasattr(AutoConfig.from_pretrained(path, local_files_only=local), "vision_config")
        if self._vision:
            from transformers import AutoModelForImageTextToText, AutoProcessor

            self._processor = AutoProcessor.from_pretrained(path, local_files_only=local)  # type: ignore[no-untyped-call]
            self._tokenizer = self._processor.tokenizer
            model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=local, dtype=torch.float32)
        else:
            self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=local)
        self._model = model.to(torch.device(self._device)).eval()  # type: ignore[arg-type]

    async def _ensure_loaded(self) -> None:
        async with self._load_lock:
            if self._model is None:
                try:
                    await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
                except Exception as exc:
                    raise EngineUnavailable(f"embedded model '{self.model}' failed to load: {exc}") from exc

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        messages = [{"role": m.role, "content": m.text} for m in request.messages]
        ids = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
            ids = ids["input_ids"]
        return list(ids)

    def _check_fits(self, prompt: int, max_tokens: int) -> None:
        """EngineBadRequest when the prompt and the answer exceed the context (2048 if the config has none)."""
        limit = self.context_tokens or 2048
        if prompt + max_tokens > limit:
            raise EngineBadRequest(
                f"prompt of {prompt} tokens plus max_tokens {max_tokens} exceeds the "
                f"embedded model's context of {limit} tokens"
            )

    def _run(self, request: GenerationRequest, emit: Any, stop: threading.Event) -> None:
        """Decode `request` on the worker thread, emitting deltas and one Finished."""
        (self._run_vision if self._vision else self._run_text)(request, emit, stop)

    def _run_vision(self, request: GenerationRequest, emit: Any, stop: threading.Event) -> None:
        """The processor builds ids and pixels; generate() decodes, streaming through _Emitter."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Stopped(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

        images = _decoded_images(request.messages)
        chat = processor_chat(request.messages)
        text = self._processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        inputs = self._processor(text=[text], images=images or None, return_tensors="pt").to(self._device)
        prompt = int(inputs["input_ids"].shape[1])
        self._check_fits(prompt, request.max_tokens)
        sample = request.temperature >= GREEDY_BELOW
        options: dict[str, Any] = {"do_sample": sample, "max_new_tokens": request.max_tokens}
        if sample:
            options |= {"temperature": request.temperature, "top_k": 0, "top_p": 1.0}
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                **options,
                streamer=_Emitter(self._tokenizer, emit),
                stopping_criteria=StoppingCriteriaList([_Stopped()]),
            )
        new = out[0, prompt:].tolist()
        eos_ids = self._model.generation_config.eos_token_id
        eos = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids or [])
        finish = "abort" if stop.is_set() else "stop" if new and new[-1] in eos else "length"
        merge = int(getattr(self._model.config.vision_config, "spatial_merge_size", 2)) ** 2
        image_tokens = int(inputs["image_grid_thw"].prod(-1).sum()) // merge if images else 0
        completion = len(new) - (finish == "stop")
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, image_tokens=image_tokens)
        emit(Finished(finish_reason=finish, usage=usage, model=self.model, notices=self._notices))

    def _run_text(self, request: GenerationRequest, emit: Any, stop: threading.Event) -> None:
        """Greedy/sampled decoding with a KV cache; checks `stop` between tokens."""
        import torch

        ids = self._prompt_ids(request)
        self._check_fits(len(ids), request.max_tokens)
        eos = self._tokenizer.eos_token_id
        generated: list[int] = []
        sent = ""
        finish = "length"
        gen = torch.Generator().manual_seed(0)
        # transformers >= 5.2x names the KV cache argument `cache`; older releases `past_key_values`.
        cache_arg = "cache" if "cache" in inspect.signature(self._model.forward).parameters else "past_key_values"
        with torch.inference_mode():
            past = None
            inputs = torch.tensor([ids], device=self._device)
            for _ in range(request.max_tokens):
                if stop.is_set():
                    finish = "abort"
                    break
                out = self._model(input_ids=inputs, use_cache=True, **{cache_arg: past})
                past = out[cache_arg]
                logits = out.logits[0, -1]
                if request.temperature >= GREEDY_BELOW:
                    probs = torch.softmax(logits / request.temperature, dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=gen))
                else:
                    token = int(torch.argmax(logits))
                if token == eos:
                    finish = "stop"
                    break
                generated.append(token)
                text = self._tokenizer.decode(generated, skip_special_tokens=True)
                if not text.endswith("\ufffd") and len(text) > len(sent):
                    emit(Delta(text[len(sent) :]))
                    sent = text
                inputs = torch.tensor([[token]], device=self._device)
        usage = Usage(prompt_tokens=len(ids), completion_tokens=len(generated))
        emit(Finished(finish_reason=finish, usage=usage, model=self.model, notices=self._notices))

    async def generate(self, request: GenerationRequest) -> AsyncGenerator[GenerationEvent, None]:
        """Stream tokens from the worker thread; closing the iterator stops decoding at the next token."""
        await self._ensure_loaded()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                self._run(request, emit, stop)
            except BaseException as exc:  # forwarded to the consumer, which re-raises it
                emit(exc)
            finally:
                emit(_DONE)

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, EngineBadRequest):
                    raise item
                if isinstance(item, BaseException):
                    raise EngineUnavailable(f"embedded engine failed: {item}") from item
                yield item
        finally:
            stop.set()
            # The worker exits at the next token; don't make the caller wait for it.
            future.add_done_callback(lambda f: f.exception())

    async def health(self) -> bool:
        return self._model is not None

    async def warmup(self) -> None:
        await self._ensure_loaded()

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
