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
from dataclasses import asdict, dataclass

import torch
from torch import nn

from attnlib.checks import (
    TorchTypeError,
    check_count,
    check_positive_count,
    check_probability,
    check_torch_inputs,
    check_torch_token_ids,
)
from attnlib.torch.attention.kv_cache import KVCache, LayerKVCache
from attnlib.torch.attention.multi_head import merge_heads, split_heads
from attnlib.torch.attention.positional import alibi_bias, rope
from attnlib.torch.attention.sdpa import scaled_dot_product_attention
from attnlib.torch.decoding.sampling import check_sampling, sample_next
from attnlib.torch.transformer.layers import FeedForward

__all__ = ["GPTConfig", "CausalSelfAttention", "GPTBlock", "GPT", "POSITION_KINDS"]

POSITION_KINDS = ("learned", "rope", "alibi")


@dataclass(frozen=True)
class GPTConfig:
    """Every setting of a :class:`GPT`, frozen: ``GPT.from_config(cfg)``, ``model.config``.

    Attributes
    ----------
    vocab_size, block_size, d_model, num_heads, num_layers : int
    positions : {"learned", "rope", "alibi"}
    d_ff : int or None
        FFN hidden width; None means ``4 * d_model``.
    dropout : float
    """
    vocab_size: int
    block_size: int
    d_model: int
    num_heads: int
    num_layers: int
    positions: str = "learned"
    d_ff: int | None = None
    dropout: float = 0.0


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
        d_model, num_heads = check_positive_count(d_model, "d_model"), check_positive_count(num_heads, "num_heads")
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        if positions not in POSITION_KINDS:
            raise ValueError(f"positions must be one of {POSITION_KINDS}, got {positions!r}")
        check_probability(dropout, "dropout")
        self.num_heads, self.positions, self.dropout = num_heads, positions, dropout
        self.d_model = d_model
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
        _check_block_input(self, x, self.d_model, cache)
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


def _check_block_input(module: nn.Module, x, d_model: int, cache) -> None:
    check_torch_inputs({"x": x}, module=module)
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"x must have shape (B, T, d_model={d_model}), got shape {tuple(x.shape)}")
    if cache is not None and not isinstance(cache, LayerKVCache):
        raise TypeError(f"cache must be a LayerKVCache (one layer of a KVCache), got {type(cache).__name__}")


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
        torch.Tensor, shape (B, T, d_model)
            Or ``(output, weights (B, H, T, past + T))`` when ``need_weights`` is True.
        """
        _check_block_input(self, x, self.ln1.normalized_shape[0], cache)
        a, weights = self.attn(self.ln1(x), cache, need_weights)
        x = x + a
        x = x + self.dropout(self.ffn(self.ln2(x)))
        return (x, weights) if need_weights else x


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
            check_positive_count(value, name)
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        if d_ff is not None:
            check_positive_count(d_ff, "d_ff")
        check_probability(dropout, "dropout")
        if positions == "rope" and (d_model // num_heads) % 2:
            raise ValueError(f"RoPE needs an even head size, got d_model/num_heads = {d_model // num_heads}")
        self.config = GPTConfig(vocab_size, block_size, d_model, num_heads, num_layers, positions, d_ff, dropout)
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

    @classmethod
    def from_config(cls, config: GPTConfig) -> "GPT":
        """A new model with the settings of ``config`` (a :class:`GPTConfig`)."""
        return cls(**asdict(config))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        """An empty :class:`~attnlib.torch.KVCache` for this model (``max_len`` defaults to block_size)."""
        p = self.tok_emb.weight
        max_len = self.block_size if max_len is None else check_positive_count(max_len, "max_len")
        return KVCache(self.num_layers, batch, self.num_heads, max_len,
                       self.d_model // self.num_heads, device=p.device, dtype=p.dtype)

    def _check_idx(self, idx, past: int = 0) -> None:
        check_torch_token_ids(idx, self.vocab_size, "idx", module=self)  # type, dtype, device, range
        if idx.dim() != 2 or idx.shape[1] == 0 or idx.shape[0] == 0:
            raise ValueError(f"idx must have shape (B, T) with B, T >= 1, got {tuple(idx.shape)}")
        if self.positions == "learned" and past + idx.shape[1] > self.block_size:
            raise ValueError(f"learned positions stop at block_size={self.block_size}, but the input "
                             f"reaches position {past + idx.shape[1]} (idx of shape {tuple(idx.shape)}"
                             f"{f' after {past} cached' if past else ''}): crop it to the last "
                             f"{self.block_size} tokens")

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
        if cache is not None and not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache (model.new_cache(batch) makes one), got {type(cache).__name__}")
        if cache is not None and len(cache) != self.num_layers:
            raise ValueError(f"cache has {len(cache)} layers but the model {self.num_layers}: use model.new_cache(batch)")
        past = cache.length if cache is not None else 0
        self._check_idx(idx, past)
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(past, past + idx.shape[1], device=idx.device))
        x = self.drop(x)
        all_weights = []
        for i, block in enumerate(self.blocks):
            x = block(x, cache[i] if cache is not None else None, need_weights)
            if need_weights:
                x, w = x
                all_weights.append(w)
        logits = self.head(self.ln_f(x))
        return (logits, all_weights) if need_weights else logits

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, use_cache: bool = True, generator: torch.Generator | None = None,
                 return_logits: bool = False, top_p: float | None = None):
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
        top_p : float, optional
            Nucleus sampling, ``0 < top_p <= 1``: sample only among the most likely tokens whose
            probabilities (after temperature and top-k) sum to at least ``top_p``.

        Returns
        -------
        tokens : torch.Tensor of int64, shape (B, T0 + max_new_tokens)
        logits : torch.Tensor, shape (B, max_new_tokens, vocab_size)
            Only when ``return_logits`` is True.
        """
        max_new_tokens = check_count(max_new_tokens, "max_new_tokens")
        check_sampling(temperature, top_k, top_p)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TorchTypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
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
                nxt = sample_next(logits, temperature, top_k, generator, top_p=top_p)
                seq = torch.cat([seq, nxt[:, None]], dim=1)
                if return_logits:
                    steps.append(logits)
        finally:
            self.train(was_training)
        if return_logits:
            empty = idx.new_zeros((idx.shape[0], 0, self.vocab_size), dtype=self.tok_emb.weight.dtype)
            return seq, torch.stack(steps, dim=1) if steps else empty
        return seq
