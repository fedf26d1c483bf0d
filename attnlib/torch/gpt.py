r"""A decoder-only Transformer language model (GPT), with sampling and a KV cache.

GPT (Radford et al., 2018, 2019) is a stack of pre-LN blocks of *causal* self-attention and a
feed-forward network over token embeddings, with a final LayerNorm and a linear map back to the
vocabulary. It is trained to predict every next token at once,

.. math:: \mathcal{L} = -\frac{1}{T} \sum_{t=1}^{T} \log p_\theta(x_{t+1} \mid x_1, \dots, x_t),

which the causal mask makes honest: position :math:`t` never sees tokens after it.

Positions come in three kinds (``positions=``): ``"learned"`` adds a learned vector per position
(a table of ``block_size`` rows, so inputs cannot be longer), ``"rope"`` rotates queries and keys
(:func:`attnlib.torch.rope`), ``"alibi"`` adds distance penalties to the scores
(:func:`attnlib.torch.alibi_bias`). RoPE and ALiBi compute positions on the fly, so their
``forward`` accepts inputs longer than ``block_size`` (length extrapolation); ``generate`` crops to
``block_size`` for all three.

Generation beyond ``block_size``: both paths condition on the last ``block_size`` tokens. The
uncached path simply crops; the cached path fills its :class:`~attnlib.torch.KVCache` up to
``block_size`` positions and, once it is full, rebuilds it from the cropped window at every step
(the positions of the cached keys would otherwise be off by one). The two paths therefore compute
the same thing and give the same tokens; the cache saves time only within ``block_size``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attnlib.torch.kv_cache import KVCache, LayerKVCache
from attnlib.torch.multi_head import merge_heads, split_heads
from attnlib.torch.positional import alibi_bias, rope
from attnlib.torch.scaled_dot_product import scaled_dot_product_attention
from attnlib.torch.transformer import FeedForward

__all__ = ["CausalSelfAttention", "GPTBlock", "GPT", "next_token_probs", "sample_next", "lm_loss",
           "evaluate_lm_loss", "train_language_model", "context_length_losses", "kv_cache_speedup"]

POSITION_KINDS = ("learned", "rope", "alibi")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with optional RoPE or ALiBi and a KV cache.

    Parameters
    ----------
    d_model, num_heads : int
        ``num_heads`` must divide ``d_model``.
    positions : {"learned", "rope", "alibi"}
        With "learned" the attention itself is position-free (positions are in the embeddings).
    dropout : float
        On the attention weights and the output (training mode only).
    """

    def __init__(self, d_model: int, num_heads: int, positions: str = "learned", dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.num_heads, self.positions, self.dropout = num_heads, positions, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: LayerKVCache | None = None, need_weights: bool = False):
        """Attend from every position to itself and the positions before it.

        Parameters
        ----------
        x : torch.Tensor, shape (B, T, d_model)
            The new positions (all of them without a cache; with a cache, those after the
            ``cache.length`` cached ones).
        cache : LayerKVCache, optional
            Receives the new keys and values; the queries attend over cached and new keys.
        need_weights : bool

        Returns
        -------
        output : torch.Tensor, shape (B, T, d_model)
        weights : torch.Tensor, shape (B, H, T, past + T), or None
        """
        B, T, _ = x.shape
        past = cache.length if cache is not None else 0
        q, k, v = (split_heads(t, self.num_heads) for t in self.qkv(x).chunk(3, dim=-1))  # (B, H, T, dh)
        if self.positions == "rope":
            q, k = rope(q, past), rope(k, past)
        if cache is not None:
            k, v = cache.append(k, v)                                   # (B, H, past + T, dh)
        L_k = k.shape[2]
        # Query i (at position past + i) may see keys j <= past + i. One new query sees everything.
        mask = None if T == 1 else torch.ones(T, L_k, dtype=torch.bool, device=x.device).tril(past)
        bias = (alibi_bias(self.num_heads, T, L_k, q_offset=past, device=x.device, dtype=x.dtype)
                if self.positions == "alibi" else None)
        out, weights = scaled_dot_product_attention(q, k, v, mask=mask, bias=bias,
                                                    dropout_p=self.dropout if self.training else 0.0,
                                                    need_weights=need_weights)
        return self.resid_dropout(self.proj(merge_heads(out))), weights


class GPTBlock(nn.Module):
    """A pre-LN decoder block without cross-attention: ``x + attn(LN(x))`` then ``x + FFN(LN(x))``.

    Parameters
    ----------
    d_model, num_heads, d_ff : int
    positions : {"learned", "rope", "alibi"}
    dropout : float
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, positions: str = "learned",
                 dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, num_heads, positions, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation="gelu")
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: LayerKVCache | None = None, need_weights: bool = False):
        """Run the block.

        Parameters
        ----------
        x : torch.Tensor, shape (B, T, d_model)
        cache : LayerKVCache, optional
        need_weights : bool

        Returns
        -------
        x : torch.Tensor, shape (B, T, d_model)
        weights : torch.Tensor, shape (B, H, T, past + T), or None
        """
        a, weights = self.attn(self.ln1(x), cache, need_weights)
        x = x + a
        return x + self.dropout(self.ffn(self.ln2(x))), weights


class GPT(nn.Module):
    """A decoder-only Transformer language model.

    Parameters
    ----------
    vocab_size : int
    block_size : int
        Context length: the most tokens the model conditions on (the size of the learned
        position table; the window ``generate`` keeps).
    d_model, num_heads, num_layers : int
    positions : {"learned", "rope", "alibi"}
    d_ff : int, optional
        FFN hidden width; default ``4 * d_model``.
    dropout : float

    Attributes
    ----------
    tok_emb : torch.nn.Embedding
        (vocab_size, d_model); its weight is shared with the output layer ``head``.
    pos_emb : torch.nn.Embedding or None
        (block_size, d_model), for ``positions="learned"`` only.
    blocks : torch.nn.ModuleList of GPTBlock
    ln_f : torch.nn.LayerNorm
    head : torch.nn.Linear
        d_model -> vocab_size, no bias.
    """

    def __init__(self, vocab_size: int, block_size: int, d_model: int, num_heads: int, num_layers: int,
                 positions: str = "learned", d_ff: int | None = None, dropout: float = 0.0):
        super().__init__()
        if positions not in POSITION_KINDS:
            raise ValueError(f"positions must be one of {POSITION_KINDS}, got {positions!r}")
        for name, value in (("vocab_size", vocab_size), ("block_size", block_size), ("d_model", d_model),
                            ("num_heads", num_heads), ("num_layers", num_layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if positions == "rope" and (d_model // num_heads) % 2:
            raise ValueError(f"RoPE needs an even head size, got d_model/num_heads = {d_model // num_heads}")
        self.vocab_size, self.block_size, self.positions = vocab_size, block_size, positions
        self.d_model, self.num_heads, self.num_layers = d_model, num_heads, num_layers
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model) if positions == "learned" else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(GPTBlock(d_model, num_heads, d_ff or 4 * d_model, positions, dropout)
                                    for _ in range(num_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok_emb.weight  # weight tying, as GPT-2
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: scale the residual projections by depth
            for lin in (block.attn.proj, block.ffn.linear2):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * num_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        """An empty :class:`~attnlib.torch.KVCache` for this model (``max_len`` defaults to block_size)."""
        p = self.tok_emb.weight
        return KVCache(self.num_layers, batch, self.num_heads, max_len or self.block_size,
                       self.d_model // self.num_heads, device=p.device, dtype=p.dtype)

    def _check_idx(self, idx, past: int = 0) -> None:
        if not isinstance(idx, torch.Tensor):
            raise ValueError(f"idx must be a torch.Tensor of token ids, got {type(idx).__name__}")
        if idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"idx must hold integer token ids (torch.long), got dtype {idx.dtype}")
        if idx.dim() != 2 or idx.shape[1] == 0 or idx.shape[0] == 0:
            raise ValueError(f"idx must have shape (B, T) with B, T >= 1, got {tuple(idx.shape)}")
        if self.positions == "learned" and past + idx.shape[1] > self.block_size:
            raise ValueError(f"learned positions stop at block_size={self.block_size}, but the input "
                             f"reaches position {past + idx.shape[1]} (idx of shape {tuple(idx.shape)}"
                             f"{f' after {past} cached' if past else ''}): crop it to the last "
                             f"{self.block_size} tokens")
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(f"token ids must be in [0, {self.vocab_size}), got ids from {lo} to {hi}")

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None, need_weights: bool = False):
        """Next-token logits at every position.

        Parameters
        ----------
        idx : torch.Tensor of int64, shape (B, T)
            Token ids. With a cache, the tokens after the ``cache.length`` cached ones.
        cache : KVCache, optional
            Filled with this call's keys and values (see :meth:`generate`).
        need_weights : bool
            Also return every layer's attention weights.

        Returns
        -------
        logits : torch.Tensor, shape (B, T, vocab_size)
            ``logits[:, t]`` scores the token after ``idx[:, t]``.
        weights : list of torch.Tensor, shape (B, H, T, past + T), one per layer
            Only when ``need_weights`` is True.

        Raises
        ------
        ValueError
            For ids that are not an integer (B, T) tensor in ``[0, vocab_size)``, or, with learned
            positions, inputs reaching past ``block_size``.
        """
        past = cache.length if cache is not None else 0
        self._check_idx(idx, past)
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(past, past + idx.shape[1], device=idx.device))
        x = self.drop(x)
        all_weights = []
        for i, block in enumerate(self.blocks):
            x, w = block(x, cache[i] if cache is not None else None, need_weights)
            all_weights.append(w)
        logits = self.head(self.ln_f(x))
        return (logits, all_weights) if need_weights else logits

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, use_cache: bool = True, generator: torch.Generator | None = None,
                 return_logits: bool = False):
        """Extend ``idx`` by ``max_new_tokens`` sampled tokens (in eval mode, without gradients).

        Parameters
        ----------
        idx : torch.Tensor of int64, shape (B, T0)
            The prompt(s). Longer than ``block_size`` is fine: only the last ``block_size``
            tokens are used.
        max_new_tokens : int
        temperature : float
            Divides the logits; 0 means greedy (always the most likely token).
        top_k : int, optional
            Sample only among the ``top_k`` most likely tokens.
        use_cache : bool
            Reuse past keys and values (a :class:`~attnlib.torch.KVCache`) instead of
            re-running the whole window at every step. Same tokens either way.
        generator : torch.Generator, optional
            For reproducible sampling.
        return_logits : bool
            Also return the logits each step sampled from.

        Returns
        -------
        tokens : torch.Tensor of int64, shape (B, T0 + max_new_tokens)
        logits : torch.Tensor, shape (B, max_new_tokens, vocab_size)
            Only when ``return_logits`` is True.
        """
        if int(max_new_tokens) != max_new_tokens or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
        _check_sampling(temperature, top_k)
        self._check_idx(idx[:, -self.block_size:] if isinstance(idx, torch.Tensor) and idx.dim() == 2 else idx)
        was_training = self.training
        self.eval()
        seq, steps = idx, []
        cache = self.new_cache(idx.shape[0]) if use_cache else None
        try:
            for step in range(max_new_tokens):
                if not use_cache:
                    logits = self(seq[:, -self.block_size:])[:, -1]
                elif step == 0 or cache.length == cache.max_len:
                    cache.reset()  # (re)build from the window of the last block_size tokens
                    logits = self(seq[:, -self.block_size:], cache=cache)[:, -1]
                else:
                    logits = self(seq[:, -1:], cache=cache)[:, -1]
                nxt = sample_next(logits, temperature, top_k, generator)
                seq = torch.cat([seq, nxt[:, None]], dim=1)
                if return_logits:
                    steps.append(logits)
        finally:
            self.train(was_training)
        if return_logits:
            empty = idx.new_zeros((idx.shape[0], 0, self.vocab_size), dtype=self.tok_emb.weight.dtype)
            return seq, torch.stack(steps, dim=1) if steps else empty
        return seq


# ----------------------------------------------------------------------------- sampling

def _check_sampling(temperature, top_k) -> None:
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    r"""The distribution the next token is sampled from: :math:`\mathrm{softmax}(z / T)` over the top k.

    Parameters
    ----------
    logits : torch.Tensor, shape (..., vocab_size)
    temperature : float
        0 gives a one-hot distribution on the most likely token (greedy).
    top_k : int, optional
        Keep the ``top_k`` largest logits, set the others to :math:`-\infty` (probability 0).

    Returns
    -------
    torch.Tensor, shape (..., vocab_size)
        Probabilities (rows sum to 1).
    """
    _check_sampling(temperature, top_k)
    if temperature == 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    return torch.softmax(z, dim=-1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample one token per row from :func:`next_token_probs` (argmax when temperature is 0).

    Parameters
    ----------
    logits : torch.Tensor, shape (B, vocab_size)
    temperature : float
    top_k : int, optional
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor of int64, shape (B,)
    """
    if temperature == 0:
        _check_sampling(temperature, top_k)
        return logits.argmax(-1)
    probs = next_token_probs(logits, temperature, top_k)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


# ----------------------------------------------------------------------------- training and evaluation

def lm_loss(model: GPT, batch) -> torch.Tensor:
    """Mean next-token cross-entropy of a batch ``(x, y)`` (NumPy or torch, shapes (B, T)).

    Parameters
    ----------
    model : GPT
    batch : tuple
        Inputs ``x`` and targets ``y`` (``x`` shifted by one), e.g. from
        :func:`attnlib.data.random_blocks`.

    Returns
    -------
    torch.Tensor
        A scalar, in nats per token.
    """
    device = model.tok_emb.weight.device
    x, y = (torch.as_tensor(t, dtype=torch.long, device=device) for t in batch)
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def evaluate_lm_loss(model: GPT, ids: np.ndarray, block_size: int, num_blocks: int = 32,
                     batch_size: int = 16, seed: int = 0, last_only: int | None = None) -> float:
    """Mean next-token loss on fixed random windows of ``ids`` (a validation split).

    Parameters
    ----------
    model : GPT
    ids : numpy.ndarray of int, shape (N,)
    block_size : int
        Length of each window (may exceed the model's ``block_size`` for RoPE and ALiBi).
    num_blocks, batch_size : int
        How many windows, evaluated in batches of ``batch_size``.
    seed : int
        Picks the windows (the same windows for every model).
    last_only : int, optional
        Score only the last ``last_only`` positions of each window (those with the longest
        context); default: all positions.

    Returns
    -------
    float
        Nats per token.
    """
    from attnlib.data.language_model import random_blocks

    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    device = model.tok_emb.weight.device
    total, count = 0.0, 0
    try:
        for start in range(0, num_blocks, batch_size):
            x, y = random_blocks(ids, min(batch_size, num_blocks - start), block_size, rng)
            x, y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
            logits = model(x)
            if last_only:
                logits, y = logits[:, -last_only:], y[:, -last_only:]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    finally:
        model.train(was_training)
    return total / count


def train_language_model(model: GPT, corpus, steps: int, batch_size: int = 64, lr: float = 3e-3,
                         block_size: int | None = None, seed: int = 0, progress: bool = True,
                         desc: str = "training GPT"):
    """Train ``model`` on random blocks of ``corpus`` with the shared loop :func:`attnlib.torch.train`.

    AdamW with a cosine learning-rate decay to 10 % over ``steps``, gradient clipping at 1.

    Parameters
    ----------
    model : GPT
    corpus : attnlib.data.CharCorpus
    steps, batch_size : int
    lr : float
        Peak learning rate.
    block_size : int, optional
        Training window; default the model's ``block_size``.
    seed : int
        Seeds the choice of blocks.
    progress : bool
    desc : str

    Returns
    -------
    attnlib.torch.History
    """
    from attnlib.torch.training import train

    block_size = block_size or model.block_size
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    return train(model, corpus.batch_stream("train", batch_size, block_size, seed), lm_loss, opt,
                 steps=steps, scheduler=sched, clip=1.0, progress=progress, desc=desc)


def context_length_losses(models: dict, ids: np.ndarray, lengths, num_blocks: int = 32,
                          seed: int = 0, last_only: int | None = None) -> dict:
    """Validation loss of each model at each evaluation length (NaN where a model cannot run).

    Parameters
    ----------
    models : dict
        ``{name: GPT}``.
    ids : numpy.ndarray of int, shape (N,)
    lengths : sequence of int
        Window lengths, e.g. 1x, 2x and 4x the training context.
    num_blocks, seed : int
        As in :func:`evaluate_lm_loss` (the same windows for every model).
    last_only : int, optional
        Score only the last ``last_only`` positions of each window.

    Returns
    -------
    dict
        ``{name: {length: loss}}``; learned positions give NaN beyond their table.
    """
    out = {}
    for name, model in models.items():
        out[name] = {}
        for L in lengths:
            try:
                out[name][L] = evaluate_lm_loss(model, ids, L, num_blocks, seed=seed, last_only=last_only)
            except ValueError:  # learned positions cannot go past block_size
                out[name][L] = float("nan")
    return out


def kv_cache_speedup(model: GPT, prompt_len: int = 16, new_tokens: int = 256, repeats: int = 3,
                     seed: int = 0) -> dict:
    """Time greedy generation with and without the KV cache (medians of interleaved runs).

    Parameters
    ----------
    model : GPT
        Its ``block_size`` should be at least ``prompt_len + new_tokens``, or both paths re-run
        the window once the cache is full.
    prompt_len, new_tokens, repeats, seed : int

    Returns
    -------
    dict
        ``cached_s``, ``uncached_s`` (seconds per generation), ``speedup`` (uncached / cached)
        and ``identical`` (same tokens).
    """
    g = torch.Generator().manual_seed(seed)
    device = model.tok_emb.weight.device
    prompt = torch.randint(0, model.vocab_size, (1, prompt_len), generator=g).to(device)
    times = {True: [], False: []}
    outs = {}
    for _ in range(repeats + 1):  # the first round warms up
        for use_cache in (True, False):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            outs[use_cache] = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[use_cache].append(time.perf_counter() - t)
    cached, uncached = (float(np.median(times[c][1:])) for c in (True, False))
    return {"cached_s": cached, "uncached_s": uncached, "speedup": uncached / cached,
            "identical": bool(torch.equal(outs[True], outs[False]))}
