"""``make bench``: the performance table, measured in one run as ratios against references.

Timings on shared machines are noisy, so each row times ours and the reference interleaved,
several times, and reports medians and their ratio. Nothing here fails on a slow day: the
table is for reading (and for the closing notes of the issues that set the targets).

Usage: ``python -m attnlib.course.bench [--repeats N] [--only NAME] [--device cpu|cuda|auto]``.
Every row runs on one device, the CPU unless ``--device`` says otherwise (``make gpu-check``
passes ``cuda``); the targets are the design's, set for the CPU.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable


@dataclass
class Row:
    what: str
    shape: str
    ours_s: float
    ref_s: float
    reference: str
    target: str

    @property
    def ratio(self) -> float:
        return self.ours_s / self.ref_s


def time_pair(ours: Callable[[], object], ref: Callable[[], object], repeats: int,
              device=None) -> tuple[float, float]:
    """Median seconds of ``ours`` and ``ref``, run alternately after one warm-up each.

    On a CUDA ``device`` each run is timed up to ``torch.cuda.synchronize()``: kernels run
    asynchronously, and the clock would otherwise stop when they are queued, not done.
    """
    sync = lambda: None  # noqa: E731
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch
        sync = torch.cuda.synchronize
    ours(), ref()
    a, b = [], []
    for _ in range(repeats):
        for fn, acc in ((ours, a), (ref, b)):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            acc.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def torch_device(name: str | None = None):
    """``name`` ("cpu", "cuda", ...) as a torch.device; "auto" is attnlib's default_device() (the
    GPU when there is one); None is the CPU."""
    import torch

    from attnlib.torch import default_device
    if name == "auto":
        return default_device()
    return torch.device(name or "cpu")


def sdpa_rows(repeats: int, device=None) -> list[Row]:
    """attnlib's scaled dot-product attention (NumPy and PyTorch) against PyTorch's SDPA, on
    ``device`` (the CPU by default; the NumPy row only there)."""
    import torch
    import torch.nn.functional as F

    import attnlib
    from attnlib import numpy as anp
    from attnlib import torch as atorch

    device = torch_device(device)
    on_cpu = device.type == "cpu"
    attnlib.seed(0)
    shape = (4, 8, 1024, 64)
    q, k, v = (torch.randn(shape) for _ in range(3))
    qn, kn, vn = (t.numpy() for t in (q, k, v))
    q, k, v = (t.to(device) for t in (q, k, v))
    ref = lambda: F.scaled_dot_product_attention(q, k, v)
    # Same numbers first: a fast wrong answer is no answer.
    expected = ref()
    outs = [atorch.scaled_dot_product_attention(q, k, v, need_weights=False)[0],
            atorch.scaled_dot_product_attention(q, k, v)[0]]
    if on_cpu:
        outs.append(torch.from_numpy(anp.scaled_dot_product_attention(qn, kn, vn)[0]))
    for out in outs:
        err = (out - expected).abs().max().item()
        if err > 1e-4:
            raise AssertionError(f"attention output differs from torch SDPA by {err}")
    cases = [
        ("attnlib.torch SDPA, need_weights=False", lambda: atorch.scaled_dot_product_attention(
            q, k, v, need_weights=False), "<= 1.1"),
        ("attnlib.torch SDPA, need_weights=True", lambda: atorch.scaled_dot_product_attention(q, k, v), "<= 2.0"),
    ]
    if on_cpu:
        cases.append(("attnlib.numpy SDPA (float32)", lambda: anp.scaled_dot_product_attention(qn, kn, vn), "-"))
    rows = []
    with torch.inference_mode():
        for what, ours, target in cases:
            ours_s, ref_s = time_pair(ours, ref, repeats, device)
            rows.append(Row(what, "x".join(map(str, shape)), ours_s, ref_s,
                            "torch.nn.functional.scaled_dot_product_attention", target))
    return rows


@dataclass
class Result:
    """A measured outcome that is not a speed ratio (an accuracy, a training time, a speed-up)."""
    what: str
    value: str
    target: str
    met: bool | None = None


# Later chapters append their benchmark functions to these lists (each function takes the
# number of repeats and the device to run on: a torch.device, or None for the function's usual
# one): speed rows, timed against a reference, and results rows.
BENCHMARKS: list[Callable[..., list[Row]]] = [sdpa_rows]
RESULTS: list[Callable[..., list[Result]]] = []


def encoder_decoder_results(repeats: int, device=None) -> list[Result]:
    """The encoder-decoder Transformer on the date task: trained once with the chapter's recipe
    (default threads) on ``device`` (the CPU by default), its test exact match and its training
    seconds."""
    import os

    import attnlib
    from attnlib.data import date_task
    from attnlib.experiments.encoder_decoder import DATE_RECIPE, train_transformer
    from attnlib.torch import evaluate_exact_match

    attnlib.seed(0)
    task = date_task(test_formats=())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    device = torch_device(device)
    model, history = train_transformer(task, progress=False, device=device)
    acc = evaluate_exact_match(model, task, task.test)
    recipe = ", ".join(f"{k}={v}" for k, v in asdict(DATE_RECIPE).items())
    return [Result(f"Transformer exact match, date task (test_formats=()), test split ({recipe})",
                   f"{acc:.4f}", ">= 0.99", acc >= 0.99),
            Result(f"Transformer training seconds on the date task ({device.type.replace('cpu', 'CPU')}, "
                   "default threads, "
                   f"load average {load:.1f} at start)", f"{history.train_seconds:.1f}", "<= 90",
                   history.train_seconds <= 90)]


RESULTS.append(encoder_decoder_results)


def minilm_rows(repeats: int, device=None) -> list[Row]:
    """attnlib's all-MiniLM-L6-v2 forward (attention weights returned) against transformers'
    BertModel, on ``device`` (the CPU by default)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import BertModel

    from attnlib.data.minilm_files import minilm_model_dir
    from attnlib.pretrained import load_minilm

    device = torch_device(device)
    model, _ = load_minilm(device=device)
    ref = BertModel.from_pretrained(str(minilm_model_dir()), local_files_only=True,
                                    attn_implementation="eager").to(device).eval()
    g = torch.Generator().manual_seed(0)
    B, L = 32, 64
    lengths = torch.randint(L // 3, L + 1, (B,), generator=g)
    lengths[0] = L
    mask = (torch.arange(L)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1000, 30000, (B, L), generator=g) * mask
    ids[:, 0] = 101
    ids, mask = ids.to(device), mask.to(device)
    ours = lambda: model(ids, mask, output_attentions=True)  # noqa: E731
    theirs = lambda: ref(input_ids=ids, attention_mask=mask, output_attentions=True)  # noqa: E731
    with torch.inference_mode():
        a, b = ours(), theirs()
        err = max((x - y).abs().max().item() for x, y in zip(a.attentions, b.attentions))
        if err > 1e-5:
            raise AssertionError(f"MiniLM attention differs from BertModel by {err}")
        ours_s, ref_s = time_pair(ours, theirs, repeats, device)
    return [Row("attnlib.pretrained MiniLM forward, attentions returned", f"{B}x{L} tokens (padded)",
                ours_s, ref_s, "transformers BertModel (eager, output_attentions)", "<= 1.2")]


BENCHMARKS.append(minilm_rows)


def gpt_kv_cache_results(repeats: int, device=None) -> list[Result]:
    """Chapter 15: greedy generation of 256 tokens with and without the KV cache (same tokens?).

    A realistic small GPT (d_model 256, 4 layers, 8 heads, block 512, character vocabulary of
    27, random weights: speed does not depend on them), a 64-token prompt, on ``device``
    (by default :func:`attnlib.torch.default_device`; ``make bench`` passes the CPU).
    """
    import attnlib
    from attnlib.experiments.gpt import kv_cache_speedup
    from attnlib.torch import GPT, default_device

    attnlib.seed(0)
    model = GPT(27, 512, 256, 8, 4).to(default_device() if device is None else device).eval()
    r = kv_cache_speedup(model, prompt_len=64, new_tokens=256, repeats=max(1, min(repeats, 3)))
    return [Result("GPT generation, KV cache vs re-forwarding the prefix (256 new tokens, d=256, 4 layers)",
                   f"{r['speedup']:.1f}x (cached {r['cached_s'] * 1e3:.0f} ms, uncached "
                   f"{r['uncached_s'] * 1e3:.0f} ms)", ">= 5x", r["speedup"] >= 5),
            Result("GPT generation, cached and uncached tokens identical (greedy, 256 new tokens)",
                   "identical" if r["identical"] else "DIFFERENT", "identical", r["identical"])]


RESULTS.append(gpt_kv_cache_results)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| what | shape | ours (ms) | reference | reference (ms) | ratio | target |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.what} | {r.shape} | {r.ours_s * 1e3:.1f} | {r.reference} | "
                     f"{r.ref_s * 1e3:.1f} | {r.ratio:.2f} | {r.target} |")
    return "\n".join(lines)


def results_table(results: list[Result]) -> str:
    lines = ["| what | measured | target | met |", "|---|---|---|---|"]
    marks = {True: "yes", False: "NO", None: "-"}
    for r in results:
        lines.append(f"| {r.what} | {r.value} | {r.target} | {marks[r.met]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", default="", help="run only the functions whose name contains this")
    parser.add_argument("--device", default="cpu",
                        help="where every row runs: cpu (the default; the targets are set for it), cuda, "
                             "or auto (attnlib.torch.default_device())")
    args = parser.parse_args(argv)
    import platform

    import torch
    device = torch_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda: no CUDA GPU here (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    where = device.type
    if device.type == "cuda":
        where += f" ({torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda})"
    rows = [row for bench in BENCHMARKS if args.only in bench.__name__ for row in bench(args.repeats, device)]
    print(f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; device: {where}; medians of {args.repeats} interleaved runs.\n")
    print(markdown_table(rows))
    results = [r for fn in RESULTS if args.only in fn.__name__ for r in fn(args.repeats, device)]
    if results:
        print("\n" + results_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
