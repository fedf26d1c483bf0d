r"""A BERT-style encoder built from attnlib's own pieces, and the loading of pretrained weights into it.

BERT (Devlin et al., 2019) is a stack of post-LN Transformer encoder layers with GELU feed-forward
networks. Its input vector at position :math:`p` is the sum of three learned embeddings,

.. math::

    x_p = \mathrm{LN}\big(E_\text{word}[t_p] + E_\text{pos}[p] + E_\text{type}[s_p]\big),

token id :math:`t_p`, position :math:`p` and segment :math:`s_p` (0 for a single sentence); then
every layer is :class:`attnlib.torch.EncoderLayer` with ``norm_first=False`` (post-LN),
``activation="gelu"`` (the exact, erf-based GELU) and LayerNorm :math:`\epsilon = 10^{-12}`.
There is no causal mask: every token attends to every real (non-padding) token, left *and* right.

all-MiniLM-L6-v2 (Wang et al., 2020; Reimers and Gurevych, 2019) is such an encoder with 6
layers, 12 heads and width 384. :func:`load_bert_weights` reads its ``model.safetensors``
(the names ``transformers`` uses, e.g. ``encoder.layer.0.attention.self.query.weight``) into
:class:`BertEncoder` and names any tensor that is missing or has the wrong shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from attnlib.checks import (
    check_path,
    check_positive_count,
    check_probability,
    check_real,
    check_safetensors_file,
    check_same_dtype_and_device,
    check_token_ids,
    check_torch_01_mask,
    check_torch_tensor,
)
from attnlib.shapes import check_count, check_num_heads
from attnlib.torch import EncoderLayer

__all__ = ["BertConfig", "BertEncoder", "EncoderOutput", "load_bert_weights", "weight_names"]


@dataclass(frozen=True)
class BertConfig:
    """The sizes of a BERT-style encoder (defaults: all-MiniLM-L6-v2).

    Attributes
    ----------
    vocab_size, hidden_size, num_layers, num_heads, intermediate_size : int
    max_position_embeddings, type_vocab_size : int
    layer_norm_eps : float
    dropout : float
        Hidden and attention dropout (active in training mode only).
    pad_token_id : int
    """
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    pad_token_id: int = 0

    def __post_init__(self):
        # Sizes are checked here, once, so that BertEncoder(config) fails with the field's name
        # instead of inside torch.nn.Embedding; whole-number floats (from JSON) become ints.
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            object.__setattr__(self, name, check_positive_count(getattr(self, name), name))
        check_num_heads(self.hidden_size, self.num_heads)
        check_real(self.layer_norm_eps, "layer_norm_eps", positive=True)
        check_probability(self.dropout, "dropout")
        pad = check_count(self.pad_token_id, "pad_token_id")
        if pad >= self.vocab_size:
            raise ValueError(f"pad_token_id must be a token id in [0, vocab_size={self.vocab_size}), got {pad}")
        object.__setattr__(self, "pad_token_id", pad)

    @classmethod
    def from_json(cls, path) -> "BertConfig":
        """Read a ``transformers`` ``config.json``.

        Parameters
        ----------
        path : str or pathlib.Path

        Returns
        -------
        BertConfig
        """
        import json

        path = check_path(path, "path")
        if path.is_dir():
            raise ValueError(f"path {path} is a directory: pass the config.json file inside it")
        try:
            c = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"path {path} is not a JSON file (a transformers config.json)") from None
        need = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "layer_norm_eps")
        missing = [k for k in need if not isinstance(c, dict) or k not in c]
        if missing:
            raise ValueError(f"path {path} is not a BERT config.json: it lacks {missing}")
        if c.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"only hidden_act='gelu' is supported, got {c['hidden_act']!r}")
        return cls(c["vocab_size"], c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"],
                   c["intermediate_size"], c["max_position_embeddings"], c["type_vocab_size"],
                   c["layer_norm_eps"], c.get("hidden_dropout_prob", 0.1), c.get("pad_token_id", 0))


@dataclass
class EncoderOutput:
    """What :class:`BertEncoder` returns.

    Attributes
    ----------
    last_hidden_state : torch.Tensor, shape (B, L, hidden_size)
        The output vector of every token (padding positions included; ignore them).
    attentions : tuple of torch.Tensor, each (B, num_heads, L, L), or None
        The attention weights of every layer (None when not asked for).
    hidden_states : tuple of torch.Tensor, each (B, L, hidden_size), or None
        The embeddings' output and every layer's output (None when not asked for).
    """
    last_hidden_state: torch.Tensor
    attentions: tuple | None = None
    hidden_states: tuple | None = None


class BertEncoder(nn.Module):
    """Word, position and token-type embeddings, a LayerNorm, and a stack of post-LN GELU encoder layers.

    Parameters
    ----------
    config : BertConfig, optional
        Default: all-MiniLM-L6-v2's sizes.

    Attributes
    ----------
    word_embeddings, position_embeddings, token_type_embeddings : torch.nn.Embedding
    embeddings_norm : torch.nn.LayerNorm
    layers : torch.nn.ModuleList of attnlib.torch.EncoderLayer
    """

    def __init__(self, config: BertConfig | None = None):
        if config is not None and not isinstance(config, BertConfig):
            raise TypeError(f"config must be a BertConfig (or None for all-MiniLM-L6-v2's sizes), got "
                            f"{type(config).__name__}; from a config.json: BertConfig.from_json(path)")
        super().__init__()
        c = self.config = config or BertConfig()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.embeddings_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(c.hidden_size, c.num_heads, c.intermediate_size, dropout=c.dropout,
                         norm_first=False, activation="gelu", layer_norm_eps=c.layer_norm_eps)
            for _ in range(c.num_layers))
        self.init_weights()

    def init_weights(self, std: float = 0.02) -> None:
        """BERT's initialisation: weights ~ N(0, std^2), biases 0, LayerNorms (1, 0), [PAD] row 0.

        Parameters
        ----------
        std : float
        """
        check_real(std, "std", non_negative=True)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    m.weight.normal_(0.0, std)
                    if isinstance(m, nn.Linear) and m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, nn.LayerNorm):
                    m.weight.fill_(1.0)
                    m.bias.zero_()
            self.word_embeddings.weight[self.config.pad_token_id].zero_()

    def embed(self, input_ids: torch.Tensor, token_type_ids=None) -> torch.Tensor:
        """The input vectors: LN(word + position + token type), then dropout.

        Parameters
        ----------
        input_ids : torch.LongTensor, shape (B, L)
        token_type_ids : torch.LongTensor, shape (B, L), optional
            Default: all 0 (one sentence).

        Returns
        -------
        torch.Tensor, shape (B, L, hidden_size)
        """
        self._check_ids(input_ids, token_type_ids)
        return self._embed(input_ids, token_type_ids)

    def _check_ids(self, input_ids, token_type_ids=None) -> None:
        """input_ids (B, L) of ids in the vocabulary, at most max_position_embeddings long; token types too."""
        c = self.config
        check_torch_tensor(input_ids, "input_ids")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be a (B, L) tensor of token ids, got shape {tuple(input_ids.shape)}")
        check_token_ids(input_ids, c.vocab_size, "input_ids")
        L = input_ids.shape[1]
        if L > c.max_position_embeddings:
            raise ValueError(f"input of length {L} exceeds the {c.max_position_embeddings} "
                             "positions the model has embeddings for: truncate it")
        if token_type_ids is not None:
            check_torch_tensor(token_type_ids, "token_type_ids")
            if tuple(token_type_ids.shape) != tuple(input_ids.shape):
                raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(token_type_ids.shape)}")
            check_token_ids(token_type_ids, c.type_vocab_size, "token_type_ids")
        check_same_dtype_and_device({"input_ids": input_ids, "token_type_ids": token_type_ids}, like=self)

    def _embed(self, input_ids: torch.Tensor, token_type_ids=None) -> torch.Tensor:
        L = input_ids.shape[1]
        positions = self.position_embeddings.weight[:L]  # (L, E), broadcast over the batch
        types = (self.token_type_embeddings.weight[0] if token_type_ids is None
                 else self.token_type_embeddings(token_type_ids))
        x = self.word_embeddings(input_ids) + types + positions
        return self.dropout(self.embeddings_norm(x))

    def forward(self, input_ids: torch.Tensor, attention_mask=None, token_type_ids=None,
                output_attentions: bool = True, output_hidden_states: bool = False) -> EncoderOutput:
        """Encode a batch of token ids.

        Parameters
        ----------
        input_ids : torch.LongTensor, shape (B, L)
            L at most ``max_position_embeddings``.
        attention_mask : torch.Tensor, shape (B, L), optional
            1 (or True) on real tokens, 0 (or False) on padding, as the tokenizer returns: boolean,
            or integers / floats holding only 0 and 1. Padded keys get zero attention. Default:
            every token is real.
        token_type_ids : torch.LongTensor, shape (B, L), optional
        output_attentions : bool
            Return every layer's attention weights. False is faster (a fused attention kernel).
        output_hidden_states : bool
            Also return the embeddings and every layer's output.

        Returns
        -------
        EncoderOutput
            ``.last_hidden_state`` (B, L, hidden_size); ``.attentions``: a tuple of
            ``num_layers`` tensors (B, num_heads, L, L), or None.

        Raises
        ------
        TypeError
            When ``input_ids`` or ``attention_mask`` is not a torch tensor.
        ValueError
            When ``input_ids`` is not (B, L), holds an id outside the vocabulary or a float, is too
            long, or lies on another device than the model; when the mask's shape differs from
            ``input_ids``', or it is not boolean / 0-1: an additive mask (0 keep, -1e4 or -inf
            pad, as ``transformers`` builds internally) is refused, pass ``attention_mask == 0``.
        """
        self._check_ids(input_ids, token_type_ids)
        B, L = input_ids.shape
        padding_mask = None
        if attention_mask is not None:
            real = check_torch_01_mask(attention_mask, "attention_mask", shape=(B, L))
            if attention_mask.is_floating_point() and L and not bool(real.any(-1).all()):
                # An additive mask with nothing padded is all 0.0: read as 0/1 it would pad everything.
                raise ValueError("attention_mask is a float mask with a row of only 0 (no real token); "
                                 "attnlib's convention is 1/True = real token, 0/False = padding. If it is an "
                                 "additive mask (0 keep, -1e4 or -inf pad), pass attention_mask == 0 instead")
            check_same_dtype_and_device({"attention_mask": real}, like=self)
            padding_mask = real
            if bool(padding_mask.all()):
                padding_mask = None  # nothing to mask: skip the masking work
        h = self._embed(input_ids, token_type_ids)
        attentions, states = [], [h]
        for layer in self.layers:
            if output_attentions:
                h, w = layer(h, padding_mask=padding_mask, need_weights=True)
                attentions.append(w["self"])
            else:
                h = layer(h, padding_mask=padding_mask)
            states.append(h)
        return EncoderOutput(h, tuple(attentions) if output_attentions else None,
                             tuple(states) if output_hidden_states else None)


def weight_names(num_layers: int = 6) -> dict:
    """Our parameter names mapped to the tensor names of a ``transformers`` BERT checkpoint.

    Parameters
    ----------
    num_layers : int

    Returns
    -------
    dict of str to str
        E.g. ``"layers.0.self_attn.q_proj.weight" -> "encoder.layer.0.attention.self.query.weight"``.
    """
    num_layers = check_count(num_layers, "num_layers")
    names = {"word_embeddings.weight": "embeddings.word_embeddings.weight",
             "position_embeddings.weight": "embeddings.position_embeddings.weight",
             "token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
             "embeddings_norm.weight": "embeddings.LayerNorm.weight",
             "embeddings_norm.bias": "embeddings.LayerNorm.bias"}
    parts = {"self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
             "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
             "norm1": "attention.output.LayerNorm", "ffn.linear1": "intermediate.dense",
             "ffn.linear2": "output.dense", "norm2": "output.LayerNorm"}
    for i in range(num_layers):
        for ours, theirs in parts.items():
            for p in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    return names


def load_bert_weights(model: BertEncoder, path) -> BertEncoder:
    """Copy a ``transformers`` BERT ``model.safetensors`` into ``model`` (in place), checking every tensor.

    Tensors the encoder does not use (the pooler, ``position_ids``) are ignored; names may carry
    a ``"bert."`` prefix.

    Parameters
    ----------
    model : BertEncoder
    path : str or pathlib.Path
        A ``.safetensors`` file.

    Returns
    -------
    BertEncoder
        ``model`` itself.

    Raises
    ------
    KeyError
        When a tensor the encoder needs is not in the file (the message names it).
    ValueError
        When a tensor has another shape than the encoder's parameter (both shapes named), or
        ``path`` is not a safetensors file (a directory, an empty or truncated file, a
        ``torch.save`` pickle).
    """
    from safetensors import safe_open

    if not isinstance(model, BertEncoder):
        raise TypeError(f"model must be a BertEncoder, got {type(model).__name__}")
    path = check_safetensors_file(check_path(path, "path"), "path")
    ours = model.state_dict()
    with safe_open(str(path), framework="pt") as f:
        stored = {k.removeprefix("bert."): k for k in f.keys()}
        loaded = {}
        for name, theirs in weight_names(model.config.num_layers).items():
            if theirs not in stored:
                raise KeyError(f"tensor {theirs!r} (for {name}) is missing from {Path(path).name}")
            t = f.get_tensor(stored[theirs])
            if tuple(t.shape) != tuple(ours[name].shape):
                raise ValueError(f"tensor {theirs!r} in {Path(path).name} has shape {tuple(t.shape)}, "
                                 f"but {name} needs {tuple(ours[name].shape)}")
            loaded[name] = t
    with torch.no_grad():
        for name, t in loaded.items():
            ours[name].copy_(t)
    return model
