"""``make bench``: the performance table, measured in one run as ratios against references.

Timings on shared machines are noisy, so each row times ours and the reference interleaved,
several times, and reports medians and their ratio. Nothing here fails on a slow day: the
table is for reading (and for the closing notes of the issues that set the targets).

Usage: ``python -m attnlib.course.bench [--repeats N] [--only NAME]``.
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


def time_pair(ours: Callable[[], object], ref: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median seconds of ``ours`` and ``ref``, run alternately after one warm-up each."""
    ours(), ref()
    a, b = [], []
    for _ in range(repeats):
        for fn, acc in ((ours, a), (ref, b)):
            start = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def sdpa_rows(repeats: int) -> list[Row]:
    """attnlib's scaled dot-product attention (NumPy and PyTorch) against PyTorch's SDPA on CPU."""
    import torch
    import torch.nn.functional as F

    import attnlib
    from attnlib import numpy as anp
    from attnlib import torch as atorch

    attnlib.seed(0)
    shape = (4, 8, 1024, 64)
    q, k, v = (torch.randn(shape) for _ in range(3))
    qn, kn, vn = (t.numpy() for t in (q, k, v))
    ref = lambda: F.scaled_dot_product_attention(q, k, v)
    # Same numbers first: a fast wrong answer is no answer.
    expected = ref()
    for out in (atorch.scaled_dot_product_attention(q, k, v, need_weights=False)[0],
                atorch.scaled_dot_product_attention(q, k, v)[0],
                torch.from_numpy(anp.scaled_dot_product_attention(qn, kn, vn)[0])):
        err = (out - expected).abs().max().item()
        if err > 1e-4:
            raise AssertionError(f"attention output differs from torch SDPA by {err}")
    cases = [
        ("attnlib.torch SDPA, need_weights=False", lambda: atorch.scaled_dot_product_attention(
            q, k, v, need_weights=False), "<= 1.1"),
        ("attnlib.torch SDPA, need_weights=True", lambda: atorch.scaled_dot_product_attention(q, k, v), "<= 2.0"),
        ("attnlib.numpy SDPA (float32)", lambda: anp.scaled_dot_product_attention(qn, kn, vn), "-"),
    ]
    rows = []
    with torch.inference_mode():
        for what, ours, target in cases:
            ours_s, ref_s = time_pair(ours, ref, repeats)
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
# number of repeats): speed rows, timed against a reference, and results rows.
BENCHMARKS: list[Callable[[int], list[Row]]] = [sdpa_rows]
RESULTS: list[Callable[[int], list[Result]]] = []


def encoder_decoder_results(repeats: int) -> list[Result]:
    """The encoder-decoder Transformer on the date task: trained once with the chapter's recipe
    (default threads), its test exact match and its training seconds."""
    import os

    import attnlib
    from attnlib.data import date_task
    from attnlib.experiments.encoder_decoder import DATE_RECIPE, train_transformer
    from attnlib.torch import evaluate_exact_match

    attnlib.seed(0)
    task = date_task(test_formats=())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    model, history = train_transformer(task, progress=False, device="cpu")
    acc = evaluate_exact_match(model, task, task.test)
    recipe = ", ".join(f"{k}={v}" for k, v in asdict(DATE_RECIPE).items())
    return [Result(f"Transformer exact match, date task (test_formats=()), test split ({recipe})",
                   f"{acc:.4f}", ">= 0.99", acc >= 0.99),
            Result("Transformer training seconds on the date task (CPU, default threads, "
                   f"load average {load:.1f} at start)", f"{history.train_seconds:.1f}", "<= 90",
                   history.train_seconds <= 90)]


RESULTS.append(encoder_decoder_results)


def minilm_rows(repeats: int) -> list[Row]:
    """attnlib's all-MiniLM-L6-v2 forward (attention weights returned) against transformers' BertModel."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import BertModel

    from attnlib.data.minilm_files import minilm_model_dir
    from attnlib.pretrained import load_minilm

    model, _ = load_minilm(device="cpu")
    ref = BertModel.from_pretrained(str(minilm_model_dir()), local_files_only=True,
                                    attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(0)
    B, L = 32, 64
    lengths = torch.randint(L // 3, L + 1, (B,), generator=g)
    lengths[0] = L
    mask = (torch.arange(L)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1000, 30000, (B, L), generator=g) * mask
    ids[:, 0] = 101
    ours = lambda: model(ids, mask, output_attentions=True)  # noqa: E731
    theirs = lambda: ref(input_ids=ids, attention_mask=mask, output_attentions=True)  # noqa: E731
    with torch.inference_mode():
        a, b = ours(), theirs()
        err = max((x - y).abs().max().item() for x, y in zip(a.attentions, b.attentions))
        if err > 1e-5:
            raise AssertionError(f"MiniLM attention differs from BertModel by {err}")
        ours_s, ref_s = time_pair(ours, theirs, repeats)
    return [Row("attnlib.pretrained MiniLM forward, attentions returned", f"{B}x{L} tokens (padded)",
                ours_s, ref_s, "transformers BertModel (eager, output_attentions)", "<= 1.2")]


BENCHMARKS.append(minilm_rows)


def gpt_kv_cache_results(repeats: int) -> list[Result]:
    """Chapter 15: greedy generation of 256 tokens with and without the KV cache (same tokens?).

    A realistic small GPT (d_model 256, 4 layers, 8 heads, block 512, character vocabulary of
    27, random weights: speed does not depend on them), a 64-token prompt.
    """
    import attnlib
    from attnlib.experiments.gpt import kv_cache_speedup
    from attnlib.torch import GPT, default_device

    attnlib.seed(0)
    model = GPT(27, 512, 256, 8, 4).to(default_device()).eval()
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
    args = parser.parse_args(argv)
    import platform

    import torch
    rows = [row for bench in BENCHMARKS if args.only in bench.__name__ for row in bench(args.repeats)]
    print(f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; medians of {args.repeats} interleaved runs.\n")
    print(markdown_table(rows))
    results = [r for fn in RESULTS if args.only in fn.__name__ for r in fn(args.repeats)]
    if results:
        print("\n" + results_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
