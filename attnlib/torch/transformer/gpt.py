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
    activation : {"gelu", "gelu_tanh", "relu"}
        The FFN's nonlinearity: exact GELU by default, its tanh approximation for GPT-2
        (:meth:`GPT.from_gpt2`).
    """
    vocab_size: int
    block_size: int
    d_model: int
    num_heads: int
    num_layers: int
    positions: str = "learned"
    d_ff: int | None = None
    dropout: float = 0.0
    activation: str = "gelu"


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
    activation : {"gelu", "gelu_tanh", "relu"}
        The FFN's nonlinearity (see :class:`~attnlib.torch.FeedForward`).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, positions: str = "learned",
                 dropout: float = 0.0, activation: str = "gelu"):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, num_heads, positions, dropout)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation=activation)
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


# transformers' GPT2Config.activation_function -> FeedForward's activation; others are refused
_GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def _is_gpt2_lm_head_model(model) -> bool:
    """True for a ``transformers`` ``GPT2LMHeadModel`` or a subclass (checked without importing transformers)."""
    return any(c.__name__ == "GPT2LMHeadModel" and c.__module__.startswith("transformers.")
               for c in type(model).__mro__)


def _gpt2_settings(config) -> dict:
    """The :class:`GPT` arguments that rebuild a ``GPT2Config``.

    Raises ValueError naming the first setting attnlib cannot reproduce.
    """
    refused = (("add_cross_attention", True, "attnlib's GPT has no cross-attention"),
               ("scale_attn_weights", False, "attnlib always scales the scores by 1/sqrt(d_head)"),
               ("scale_attn_by_inverse_layer_idx", True,
                "attnlib scales every layer's scores by 1/sqrt(d_head) alone, not also by 1/(layer + 1)"),
               ("reorder_and_upcast_attn", True, "attnlib computes attention in the weights' dtype, unreordered"),
               ("tie_word_embeddings", False, "attnlib's output layer is always the token embedding (tied)"))
    for name, bad, why in refused:
        if bool(getattr(config, name, not bad)) == bad:
            raise ValueError(f"GPT2Config.{name}={bad} cannot be reproduced: {why}")
    act = config.activation_function
    if act not in _GPT2_ACTIVATIONS:
        raise ValueError(f"GPT2Config.activation_function={act!r} cannot be reproduced: attnlib reproduces "
                         f"{', '.join(_GPT2_ACTIVATIONS)} only")
    if config.layer_norm_epsilon != 1e-5:
        raise ValueError(f"GPT2Config.layer_norm_epsilon={config.layer_norm_epsilon} cannot be reproduced: "
                         "attnlib's GPT uses eps=1e-5 in every LayerNorm (GPT-2's default)")
    return {"vocab_size": config.vocab_size, "block_size": config.n_positions, "d_model": config.n_embd,
            "num_heads": config.n_head, "num_layers": config.n_layer, "positions": "learned",
            "d_ff": config.n_inner, "activation": _GPT2_ACTIVATIONS[act]}


def _gpt2_weight_names(num_layers: int) -> dict:
    """Our parameter names -> (the ``GPT2LMHeadModel`` tensor name, True for a Conv1D weight to transpose)."""
    names = {"tok_emb.weight": ("transformer.wte.weight", False),
             "pos_emb.weight": ("transformer.wpe.weight", False),
             "ln_f.weight": ("transformer.ln_f.weight", False), "ln_f.bias": ("transformer.ln_f.bias", False)}
    for i in range(num_layers):
        ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
        for a, b in (("ln1", "ln_1"), ("ln2", "ln_2")):
            names.update({f"{ours}{a}.{p}": (f"{theirs}{b}.{p}", False) for p in ("weight", "bias")})
        for a, b in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"),
                     ("ffn.linear1", "mlp.c_fc"), ("ffn.linear2", "mlp.c_proj")):
            names[f"{ours}{a}.weight"] = (f"{theirs}{b}.weight", True)   # Conv1D: (in, out)
            names[f"{ours}{a}.bias"] = (f"{theirs}{b}.bias", False)
    return names


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
    activation : {"gelu", "gelu_tanh", "relu"}
        The FFN's nonlinearity. The default, exact GELU, is what every chapter trains;
        ``"gelu_tanh"`` (GELU's tanh approximation) is GPT-2's, set by :meth:`from_gpt2`.

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

    Notes
    -----
    With learned positions and ``activation="gelu_tanh"`` this is GPT-2's architecture, weight
    for weight: :meth:`from_gpt2` copies a ``transformers`` ``GPT2LMHeadModel`` and gives its
    logits (the independent reference ``tests/test_gpt2_reference.py`` checks).
    """

    def __init__(self, vocab_size: int, block_size: int, d_model: int, num_heads: int, num_layers: int,
                 positions: str = "learned", d_ff: int | None = None, dropout: float = 0.0,
                 activation: str = "gelu"):
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
        if activation not in ("gelu", "gelu_tanh", "relu"):
            raise ValueError(f"activation must be 'gelu', 'gelu_tanh' or 'relu', got {activation!r}")
        self.config = GPTConfig(vocab_size, block_size, d_model, num_heads, num_layers, positions, d_ff, dropout,
                                activation)
        self.vocab_size, self.block_size, self.positions = vocab_size, block_size, positions
        self.d_model, self.num_heads, self.num_layers = d_model, num_heads, num_layers
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model) if positions == "learned" else None
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(GPTBlock(d_model, num_heads, d_ff or 4 * d_model, positions, dropout,
                                             activation) for _ in range(num_layers))
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

    @classmethod
    def from_gpt2(cls, model, dropout: float = 0.0) -> "GPT":
        """A GPT holding the weights of a ``transformers`` ``GPT2LMHeadModel``: the same logits.

        GPT-2 (Radford et al., 2019) makes the choices this class makes, but one: learned
        positions, pre-LN blocks and a final LayerNorm (eps 1e-5), one fused projection to
        queries, keys and values (``c_attn``: q | k | v, each head a contiguous block, as
        :func:`~attnlib.torch.split_heads`), biases in every linear layer and LayerNorm, scores
        scaled by 1/sqrt(d_head) under a causal mask, and an output layer without bias tied to
        the token embedding. The exception is the FFN's GELU: GPT-2 uses its tanh approximation
        (``activation_function="gelu_new"``), so the copy gets ``activation="gelu_tanh"``. GPT-2's
        ``Conv1D`` layers store their weights as (in, out), the transpose of ``nn.Linear``'s
        (out, in): they are transposed on the way.

        Dropout is not copied. GPT-2 has three rates (``embd_pdrop``, ``attn_pdrop``,
        ``resid_pdrop``), this class one, which also drops the FFN's hidden activations (GPT-2
        does not). The copy gets ``dropout`` (0 by default): the two models agree in eval mode,
        and in train mode only when both have dropout 0.

        Parameters
        ----------
        model : transformers.GPT2LMHeadModel
            E.g. ``GPT2LMHeadModel(GPT2Config(n_layer=2, ...))`` (random weights, offline) or
            ``GPT2LMHeadModel.from_pretrained("gpt2")`` (downloads GPT-2 small).
        dropout : float
            The copy's dropout rate.

        Returns
        -------
        GPT
            ``block_size = n_positions``, ``d_ff = n_inner``; on the device, in the dtype and in
            the train/eval mode of ``model``. Its parameters are copies: changing one model
            leaves the other as it was. Torch's random state is left as it was.

        Raises
        ------
        TypeError
            For anything but a ``GPT2LMHeadModel`` (a ``GPT2Model`` has no output layer).
        ValueError
            For a ``GPT2Config`` this class cannot reproduce, naming the setting:
            ``add_cross_attention``, ``scale_attn_weights=False``,
            ``scale_attn_by_inverse_layer_idx``, ``reorder_and_upcast_attn``,
            ``tie_word_embeddings=False``, an ``activation_function`` other than gelu_new,
            gelu_pytorch_tanh, gelu or relu, a ``layer_norm_epsilon`` other than 1e-5; for an
            output layer that is not the token embedding; for weights of unexpected shapes
            (pruned heads) or weights it would not copy.
        """
        if not _is_gpt2_lm_head_model(model):
            raise TypeError(f"model must be a transformers GPT2LMHeadModel, got {type(model).__module__}."
                            f"{type(model).__qualname__}")
        dropout = check_probability(dropout, "dropout")
        settings = _gpt2_settings(model.config)
        w = model.transformer.wte.weight
        if not torch.equal(model.lm_head.weight, w):
            raise ValueError("model.lm_head.weight differs from model.transformer.wte.weight: attnlib's output "
                             "layer is always the token embedding (tie_word_embeddings)")
        theirs = model.state_dict()
        with torch.random.fork_rng(devices=[]):  # the throw-away init leaves torch's seeded state as it was
            ours = cls(**settings, dropout=dropout).to(device=w.device, dtype=w.dtype)
        names = _gpt2_weight_names(settings["num_layers"])
        params = dict(ours.named_parameters())  # head.weight is tok_emb.weight, listed once
        assert params.keys() == names.keys(), "every parameter of ours has a GPT-2 name"
        unused = sorted(set(theirs) - {n for n, _ in names.values()} - {"lm_head.weight"}
                        - {k for k in theirs if k.endswith((".attn.bias", ".attn.masked_bias"))})  # old mask buffers
        if unused:
            raise ValueError(f"model has weights GPT.from_gpt2 would not copy: {', '.join(unused)}")
        with torch.no_grad():
            for ours_name, (their_name, transpose) in names.items():
                t, want = theirs.get(their_name), params[ours_name].shape
                if t is None or (t.T if transpose else t).shape != want:
                    got = "missing" if t is None else f"of shape {tuple(t.shape)}"
                    stored = f" stored (in, out) = {tuple(want)[::-1]}" if transpose else f" of shape {tuple(want)}"
                    raise ValueError(f"model's {their_name} should be{stored} for {ours_name}, but it is {got} "
                                     "(pruned heads?)")
                params[ours_name].copy_(t.T if transpose else t)
        return ours.train(model.training)

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
