"""Train the demo vision-language model (a small Qwen2-VL from random init) on synthetic street scenes.

python -m training.vlm OUT --scenes 8000 --minutes 6 --device cuda [--batch 96] [--workers 14] [--report R.json]

Scenes are drawn in a process pool (training/synth.py), the configured detection ensemble runs over every
image (its summary goes into the system prompt, as the router sends it), and conversations about each scene
(training/vlm_data.py) are built on the fly in DataLoader workers, which also run the HF processor. The loss
covers the assistant answers only (each answer and its closing <|im_end|>). OUT gets the model (bf16), the
tokenizer and processor files, MODEL_CARD.md and train-report.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import Detection, VoteStatus
from engines.tiny_vlm import VLMShape, build_processor, build_vlm, engine_config_aliases
from router.flow.prompting import detection_summary
from router.flow.vision import PixelBudget
from training.vlm_data import (
    CONFIDENCE,
    QUESTION_STREAM,
    TRAIN_STREAM,
    SceneImage,
    chat,
    conversation,
    corpus,
    detect,
    processor_budget,
    render_images,
    system_prompt,
)

# The demo model: about 6.6M parameters, 13 MB in bf16. Text head_dim 64 (vLLM's CPU attention takes it);
# a 640x480 frame is resized to 448x336 = 16 x 12 = 192 image tokens; a 224x224 StreetVision frame keeps
# its size (64 tokens), and anything smaller is scaled up to that area.
DEMO = VLMShape(
    vocab=2048,
    hidden=256,
    intermediate=640,
    layers=4,
    heads=4,
    kv_heads=2,
    vision_depth=4,
    vision_dim=192,
    vision_heads=3,
    min_pixels=224 * 224,
    max_pixels=448 * 336,
    context=4096,
)
# A shape small enough for CPU tests and smoke runs (head_dim 32).
SMOKE = VLMShape(
    vocab=1024,
    hidden=64,
    intermediate=128,
    layers=1,
    heads=2,
    kv_heads=1,
    vision_depth=1,
    vision_dim=32,
    vision_heads=1,
    min_pixels=112 * 112,
    max_pixels=224 * 168,
    context=4096,
)
SHAPES = {"demo": DEMO, "smoke": SMOKE}
KEEP_FROM_BUILD_EXCLUDE = ("model.safetensors", "config.json", "MODEL_CARD.md")


def log(msg: str) -> None:
    """One progress line on stdout, flushed."""
    print(msg, flush=True)


# ------------------------------------------------------------------------------------------------- processor
def load_processor(model_dir: Path) -> Any:
    """The model's processor; rebuilt from tokenizer.json if this transformers version loads another tokenizer."""
    from tokenizers import Tokenizer
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)  # type: ignore[no-untyped-call]
    raw = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    probe = "<|im_start|>system\nDetection: roadwork likely (P(roadwork) = 0.93).<|im_end|>\n<|vision_start|>"
    if processor.tokenizer(probe, add_special_tokens=False).input_ids != raw.encode(probe).ids:
        legacy = json.loads((model_dir / "preprocessor_config.json").read_text())
        shape = VLMShape(min_pixels=legacy["min_pixels"], max_pixels=legacy["max_pixels"])
        processor = build_processor(shape, raw)
    return processor


def answer_header(tokenizer: Any) -> list[int]:
    """Token ids that open an assistant turn in the chat template: <|im_start|>assistant\\n."""
    return [
        tokenizer.convert_tokens_to_ids("<|im_start|>"),
        *tokenizer("assistant\n", add_special_tokens=False).input_ids,
    ]


def answer_labels(ids: Sequence[int], header: Sequence[int], end: int) -> list[int]:
    """Labels for one sequence: the tokens of every assistant answer up to and including its <|im_end|>, else -100."""
    labels = [-100] * len(ids)
    h, i = len(header), 0
    while i <= len(ids) - h:
        if list(ids[i : i + h]) != list(header):
            i += 1
            continue
        j = i + h
        while j < len(ids) and ids[j] != end:
            j += 1
        stop = min(j + 1, len(ids))
        labels[i + h : stop] = ids[i + h : stop]
        i = stop
    return labels


class Collate:
    """Runs the HF processor over (image, messages) pairs, adds answer-only labels; bf16 pixels halve the transfer."""

    def __init__(self, processor: Any, bf16_pixels: bool = False) -> None:
        self.processor, self.bf16_pixels = processor, bf16_pixels
        self.header = answer_header(processor.tokenizer)
        self.end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def __call__(self, items: Sequence[tuple[Any, list[dict[str, Any]]]]) -> dict[str, Any]:
        import torch

        texts = [self.processor.apply_chat_template(m, tokenize=False) for _img, m in items]
        self.processor.tokenizer.padding_side = "right"
        batch = dict(self.processor(text=texts, images=[img for img, _m in items], padding=True, return_tensors="pt"))
        ids = batch["input_ids"].tolist()
        labels = torch.tensor([answer_labels(row, self.header, self.end) for row in ids])
        batch["labels"] = labels.masked_fill(batch["attention_mask"] == 0, -100)
        if self.bf16_pixels:
            batch["pixel_values"] = batch["pixel_values"].to(torch.bfloat16)
        return batch


# --------------------------------------------------------------------------------------------------- dataset
class Conversations:
    """Item k: a fresh conversation about image k mod n (its question draws depend only on (seed, k))."""

    def __init__(
        self,
        images: Sequence[SceneImage],
        detections: Sequence[Detection],
        prompt: str,
        seed: int,
        budget: PixelBudget,
        summary_share: float = 1.0,
    ) -> None:
        self.images, self.detections, self.prompt, self.seed = list(images), list(detections), prompt, seed
        self.budget = budget  # images are fitted to it as the router fits them for a pool
        # The share of conversations whose prompt carries the detection summary; the rest have the image
        # alone, so the vision tower must learn (with the summary always there, the model copies it).
        self.summary_share = summary_share

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> tuple[Any, list[dict[str, Any]]]:
        i = k % len(self.images)
        im = self.images[i]
        rng = np.random.default_rng([QUESTION_STREAM, self.seed, k])
        turns = conversation(rng, im.facts, im.augmented)
        picture, part = im.sent(self.budget)
        summary = bool(rng.random() < self.summary_share)
        return picture, chat(self.prompt, self.detections[i], part, turns, final=True, summary=summary)


class SizeGroupedBatches:
    """Endless batches of dataset indices whose images share a size, reshuffled every pass."""

    def __init__(self, sizes: Sequence[tuple[int, int]], batch: int, seed: int) -> None:
        self.n, self.batch, self.seed = len(sizes), batch, seed
        self.groups: dict[tuple[int, int], list[int]] = {}
        for i, size in enumerate(sizes):
            self.groups.setdefault(size, []).append(i)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, 1])
        epoch = 0
        while True:
            batches: list[list[int]] = []
            for members in self.groups.values():
                perm = [int(x) for x in rng.permutation(members)]
                step = min(self.batch, len(perm))
                batches += [perm[i : i + step] for i in range(0, len(perm) - step + 1, step)]
            for b in rng.permutation(len(batches)):
                yield [epoch * self.n + i for i in batches[int(b)]]
            epoch += 1


def one_thread(_worker: int) -> None:
    """DataLoader worker setup: one torch thread each (the workers already run in parallel)."""
    import torch

    torch.set_num_threads(1)


# -------------------------------------------------------------------------------------------------- training
def lr_at(step: int, frac: float, peak: float, warmup: int) -> float:
    """Linear warmup over `warmup` steps, then cosine from peak to 5 % of it over the time budget."""
    warm = min(1.0, (step + 1) / warmup)
    return peak * warm * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac))))


def train_loop(model: Any, loader: Any, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """AdamW (TF32 matmuls on CUDA; bf16 autocast only with --bf16) and a cosine LR over the wall-clock budget.

    fp32 by default: the first runs in bf16 let the image features grow to a norm near 1,000 per token
    against 0.35 for a text embedding, and at bf16's 8-bit mantissa the image-dependent part of them
    rounded away (image-only answers stayed at chance). The run is data-loader bound, so fp32 costs nothing."""
    import torch

    cuda = args.device.startswith("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01, fused=cuda)
    start = time.perf_counter()
    budget = max(1e-6, deadline - start)
    curve: list[dict[str, float]] = []
    window, samples, tokens, step = torch.zeros((), device=args.device), 0, 0, 0
    last = (start, 0, 0)
    model.train()
    for step, batch in enumerate(loader):
        now = time.perf_counter()
        if now >= deadline or step >= args.max_steps:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(step, (now - start) / budget, args.lr, args.warmup)
        samples += int(batch["input_ids"].shape[0])
        tokens += int(batch["attention_mask"].sum())  # counted on the host: no device sync per step
        batch = {k: v.to(args.device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda and args.bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        window += loss.detach()
        if (step + 1) % args.log_every == 0:
            t = time.perf_counter()
            mean = float(window) / args.log_every
            rate = (samples - last[1]) / (t - last[0])
            tok_rate = (tokens - last[2]) / (t - last[0])
            curve.append({"step": step + 1, "seconds": round(t - start, 1), "loss": round(mean, 4)})
            log(
                f"step {step + 1:6d}  {t - start:6.1f}s  loss {mean:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                f"{rate:7.1f} samples/s  {tok_rate:9.0f} tokens/s"
            )
            window.zero_()
            last = (t, samples, tokens)
    seconds = time.perf_counter() - start
    return {
        "steps": step,
        "samples": samples,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "samples_per_s": round(samples / seconds, 1),
        "tokens_per_s": round(tokens / seconds),
        "curve": curve,
    }


def shm_free() -> int | None:
    """Free bytes in /dev/shm, where DataLoader workers hand batches over (None: unknown)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def loader_plan(workers: int, batch_bytes: int, free: int | None) -> tuple[int, int]:
    """(workers, prefetch per worker) whose batches in flight fit in half the free shared memory."""
    prefetch = 2
    if free is None:
        return workers, prefetch
    while workers and workers * prefetch * batch_bytes > free // 2:
        if prefetch > 1:
            prefetch -= 1
        else:
            workers -= 1
    return workers, prefetch


def make_loader(dataset: Conversations, processor: Any, shape: VLMShape, args: argparse.Namespace) -> Any:
    """A DataLoader over endless size-grouped batches, the processor running in its workers."""
    from torch.utils.data import DataLoader

    cuda = args.device.startswith("cuda")
    batch_bytes = args.batch * (shape.max_pixels // (14 * 14)) * 1176 * (2 if cuda else 4)
    workers, prefetch = loader_plan(args.workers, batch_bytes, shm_free())
    if workers < args.workers:
        log(f"/dev/shm has {shm_free()} bytes free: {workers} DataLoader workers, prefetch {prefetch}")
    sizes = [(im.width, im.height) for im in dataset.images]
    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": prefetch} if workers else {}
    return DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_sampler=SizeGroupedBatches(sizes, args.batch, args.seed),
        collate_fn=Collate(processor, bf16_pixels=cuda and args.bf16),
        num_workers=workers,
        pin_memory=cuda,
        worker_init_fn=one_thread,
        **extra,
    )


# ------------------------------------------------------------------------------------------------ the model
def parameters(model: Any) -> tuple[int, int]:
    """(all parameters, vision-tower parameters)."""
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for n, p in model.named_parameters() if "visual" in n)
    return int(total), int(vision)


def save_model(model: Any, build_dir: Path, out: Path) -> int:
    """Weights in bf16 plus the build's tokenizer / processor / generation files; returns the weights' bytes."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    model.to(torch.bfloat16).save_pretrained(out)
    engine_config_aliases(out)
    for f in build_dir.iterdir():
        if f.is_file() and f.name not in KEEP_FROM_BUILD_EXCLUDE:
            shutil.copy2(f, out / f.name)
    return (out / "model.safetensors").stat().st_size


def model_card(report: dict[str, Any]) -> str:
    """MODEL_CARD.md: what the model is, what it saw, how long it trained, what it cannot do."""
    s, tr = report["shape"], report["train"]
    heads = f"{s['heads']} heads of {s['hidden'] // s['heads']} ({s['kv_heads']} KV heads)"
    augmented = report["images"]["augmented"]
    return f"""# roadwork-qwen2vl-demo

A small Qwen2-VL (random init, trained by `python -m training.vlm`) that answers roadwork questions about
street images, for the router's quick-start demo.

- **Architecture:** Qwen2VLForConditionalGeneration. Text: {s["layers"]} layers, hidden {s["hidden"]},
  MLP {s["intermediate"]}, {heads}, vocab {s["vocab"]}
  (byte-level BPE trained on the task's texts). Vision: {s["vision_depth"]} blocks of width {s["vision_dim"]},
  patch 14, 2x2 merge. {report["parameters"]:,} parameters ({report["vision_parameters"]:,} in the vision tower),
  bf16, {report["model_bytes"] / 1e6:.1f} MB.
- **Images:** resized to at most {s["max_pixels"]:,} pixels (640x480 becomes 448x336, 192 image tokens) and at
  least {s["min_pixels"]:,} (224x224 stays 224x224, 64 tokens).
- **Data:** {report["scenes"]:,} procedurally drawn synthetic street scenes (training/synth.py), {augmented:,} of
  them also StreetVision-augmented; in {report["summary_share"]:.0%} of conversations the system prompt carries the real
  detection ensemble's summary, as the router
  sends it. It has seen **only synthetic scenes**, never a real photo: expect it to fail on real images.
- **Questions:** roadwork yes/no, which objects, counts per class, lane closed / how many, work active, and the
  structured verdict (JSON after `router.flow.verdict.INSTRUCTION`); 0-2 earlier turns replayed as history.
- **Verdict confidence is fixed at {CONFIDENCE}**: it is a constant the model learned to print, not a calibrated
  probability.
- **Training:** {tr["steps"]:,} steps, {tr["samples"]:,} conversations, {tr["seconds"]:.0f} s on {report["device"]}
  (AdamW, cosine LR, peak {report["lr"]}, batch {report["batch"]}); final loss {report["final_loss"]}.
- **Evaluation:** `python -m training.evaluate_vlm MODEL --n 300 --device cuda --out report.json` on held-out scenes.
"""


def device_name(device: str) -> str:
    """The accelerator's name (or "CPU")."""
    import torch

    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "CPU"


def build_data(args: argparse.Namespace) -> tuple[list[SceneImage], list[Detection], dict[str, Any]]:
    """Render the scenes, run the detectors over every image; returns the images, detections and timings."""
    t0 = time.perf_counter()
    images = render_images(TRAIN_STREAM, args.seed, args.scenes, args.aug, args.jobs, (args.width, args.height))
    t1 = time.perf_counter()
    log(f"rendered {args.scenes} scenes ({len(images)} images) in {t1 - t0:.1f} s ({len(images) / (t1 - t0):.0f}/s)")
    detections = detect(images, args.config, concurrency=64 if args.device.startswith("cuda") else 8)
    t2 = time.perf_counter()
    incomplete = sum(1 for d in detections if any(v.status is not VoteStatus.OK for v in d.votes))
    log(f"detected {len(images)} images in {t2 - t1:.1f} s ({len(images) / (t2 - t1):.0f}/s), {incomplete} incomplete")
    n_aug = sum(im.augmented for im in images)
    stats = {
        "render_s": round(t1 - t0, 1),
        "render_images_per_s": round(len(images) / (t1 - t0), 1),
        "detect_s": round(t2 - t1, 1),
        "detect_images_per_s": round(len(images) / (t2 - t1), 1),
        "detections_incomplete": incomplete,
        "images": {"clean": len(images) - n_aug, "augmented": n_aug},
        "roadwork_fraction": round(sum(im.facts.roadwork for im in images) / len(images), 3),
        "detector_roadwork_accuracy": round(
            sum(d.roadwork == im.facts.roadwork for d, im in zip(detections, images, strict=True)) / len(images), 4
        ),
    }
    return images, detections, stats


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole job: data, model build, training, save; returns the train report."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    images, detections, stats = build_data(args)
    prompt = system_prompt(args.config)
    shape = SHAPES[args.shape]
    summaries = [detection_summary(d) for d in detections]
    with tempfile.TemporaryDirectory(prefix="vlm-build-") as tmp:
        build = build_vlm(Path(tmp) / "init", shape, corpus=corpus([im.facts for im in images], summaries, prompt))
        model = Qwen2VLForConditionalGeneration.from_pretrained(build, dtype=torch.float32).to(args.device)
        processor = load_processor(build)
        total, vision = parameters(model)
        log(f"model: {total:,} parameters ({vision:,} vision), shape {args.shape}")
        budget = processor_budget(processor)
        conversations = Conversations(images, detections, prompt, args.seed, budget, args.summary_share)
        loader = make_loader(conversations, processor, shape, args)
        deadline = time.perf_counter() + args.minutes * 60
        if args.wall_minutes:
            deadline = min(deadline, t_start + args.wall_minutes * 60 - 30)
        train = train_loop(model, loader, args, deadline)
        del loader
        size = save_model(model, build, args.out)
    report: dict[str, Any] = {
        "command": "python -m training.vlm " + " ".join(sys.argv[1:]),
        "device": device_name(args.device),
        "shape_name": args.shape,
        "shape": asdict(shape),
        "parameters": total,
        "vision_parameters": vision,
        "model_bytes": size,
        "scenes": args.scenes,
        "seed": args.seed,
        "batch": args.batch,
        "lr": args.lr,
        "summary_share": args.summary_share,
        "precision": "bf16 autocast" if args.bf16 else "fp32 (TF32 matmuls)",
        "workers": args.workers,
        **stats,
        "train": train,
        "final_loss": train["curve"][-1]["loss"] if train["curve"] else None,
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    (args.out / "MODEL_CARD.md").write_text(model_card(report))
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m training.vlm", description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="where the trained model goes")
    p.add_argument("--scenes", type=int, default=8000)
    p.add_argument("--aug", type=float, default=0.25, help="share of scenes also seen StreetVision-augmented")
    p.add_argument("--minutes", type=float, default=6.0, help="training loop's wall-clock budget")
    p.add_argument("--wall-minutes", type=float, default=0.0, help="cap on the whole run (0: none)")
    p.add_argument("--max-steps", type=int, default=10**9)
    p.add_argument("--device", default="cuda")
    p.add_argument("--shape", choices=sorted(SHAPES), default="demo")
    p.add_argument("--batch", type=int, default=96)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (see train_loop: fp32 is the default)")
    p.add_argument(
        "--summary-share", type=float, default=0.5, help="conversations whose prompt has the detection summary"
    )
    p.add_argument("--workers", type=int, default=14, help="DataLoader workers (the processor runs there)")
    p.add_argument("--jobs", type=int, default=16, help="processes drawing the scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--config", type=Path, default=None, help="router config for the detectors and system prompt")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also write the train report here (it always goes to OUT/train-report.json)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Train, save, and write the report."""
    args = parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2) + "\n"
    (args.out / "train-report.json").write_text(text)
    if args.report:
        args.report.write_text(text)
    tr = report["train"]
    log(f"trained {tr['steps']} steps in {tr['seconds']} s ({tr['samples_per_s']} samples/s)")
    log(f"final loss {report['final_loss']}")
    log(f"saved {args.out} ({report['model_bytes'] / 1e6:.1f} MB weights, {report['parameters']:,} parameters)")


if __name__ == "__main__":
    main()
