r"""The Transformer block: residual connections, layer normalisation and the position-wise FFN.

An encoder layer (Vaswani et al., 2017) is two *sublayers*, self-attention and a position-wise
feed-forward network, each wrapped in a residual connection and a layer normalisation. Where the
norm sits is the one design choice:

.. math::

    \text{post-LN (the original):}\quad x \leftarrow \mathrm{LN}\big(x + \mathrm{Dropout}(F(x))\big)
    \qquad\qquad
    \text{pre-LN:}\quad x \leftarrow x + \mathrm{Dropout}\big(F(\mathrm{LN}(x))\big)

A decoder layer has three sublayers: causal self-attention, cross-attention to the encoder's
output (the *memory*), and the FFN. A pre-LN stack ends with one more LayerNorm (its residual
stream is never normalised otherwise); a post-LN stack does not need one.

Every module here is batch-first and built on :class:`attnlib.torch.MultiHeadAttention`, so its
boolean masks mean **True = may attend** (``torch.nn.Transformer*Layer`` use True = blocked).
The ``from_torch`` constructors copy the weights of PyTorch's own layers (built with
``batch_first=True``); the tests prove the outputs equal.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from attnlib.checks import (
    check_positive_count,
    check_probability,
    check_real,
    check_torch_bool_mask,
    check_torch_inputs,
)
from attnlib.torch.attention.masks import causal_mask, merge_masks
from attnlib.torch.attention.multi_head import MultiHeadAttention

__all__ = ["FeedForward", "EncoderLayer", "DecoderLayer", "TransformerEncoder",
           "TransformerDecoder", "_ACTIVATIONS"]

# "gelu_tanh" is GELU's tanh approximation, the "gelu_new" of GPT-2 (GPT.from_gpt2 needs it)
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "gelu_tanh": partial(F.gelu, approximate="tanh")}


def _check_x(x, d_model: int, name: str = "x", module=None) -> None:
    check_torch_inputs({name: x}, module=module)
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (B, L, d_model={d_model}), got shape {tuple(x.shape)}")


def _check_layer_settings(d_model, d_ff, dropout, layer_norm_eps) -> None:
    check_positive_count(d_model, "d_model")
    check_positive_count(d_ff, "d_ff")
    check_probability(dropout, "dropout")
    check_real(layer_norm_eps, "layer_norm_eps", positive=True)


class FeedForward(nn.Module):
    r"""The position-wise feed-forward network: :math:`\mathrm{FFN}(x) = W_2\, \mathrm{Dropout}(\phi(W_1 x + b_1)) + b_2`.

    The same two-layer MLP is applied to every position on its own: positions never mix here
    (that is attention's job).

    Parameters
    ----------
    d_model : int
        Input and output width.
    d_ff : int
        Hidden width (4 * d_model in the original Transformer).
    dropout : float
        Dropout on the hidden activations (training mode only).
    activation : {"relu", "gelu", "gelu_tanh"}
        ``"gelu"`` is the exact GELU, ``"gelu_tanh"`` its tanh approximation (GPT-2's).
    device, dtype : optional

    Raises
    ------
    ValueError
        For an unknown activation or a dropout outside [0, 1).
    """

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "relu",
                 device=None, dtype=None):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(_ACTIVATIONS)}, got {activation!r}")
        d_model, d_ff = check_positive_count(d_model, "d_model"), check_positive_count(d_ff, "d_ff")
        check_probability(dropout, "dropout")
        self.activation = activation
        self.linear1 = nn.Linear(d_model, d_ff, device=device, dtype=dtype)
        self.linear2 = nn.Linear(d_ff, d_model, device=device, dtype=dtype)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the FFN to every position.

        Parameters
        ----------
        x : torch.Tensor, shape (..., d_model)

        Returns
        -------
        torch.Tensor, shape (..., d_model)
        """
        check_torch_inputs({"x": x}, module=self)
        if x.dim() < 1 or x.shape[-1] != self.linear1.in_features:
            raise ValueError(f"x must have shape (..., d_model={self.linear1.in_features}), got "
                             f"shape {tuple(x.shape)}")
        return self.linear2(self.dropout(_ACTIVATIONS[self.activation](self.linear1(x))))


class _Block(nn.Module):
    """What encoder and decoder layers share: the residual-and-norm wrapper of a sublayer."""

    def _sublayer(self, x, norm, dropout, fn):
        """``x + dropout(fn(x'))`` with the norm before (pre-LN) or after (post-LN)."""
        if self.norm_first:
            y = fn(norm(x))
            return x + dropout(y) if self.residual else dropout(y)
        y = dropout(fn(x))
        return norm(x + y) if self.residual else norm(y)

    @staticmethod
    def _copy_norm(ours: nn.LayerNorm, theirs: nn.LayerNorm) -> None:
        ours.eps = theirs.eps
        ours.weight.copy_(theirs.weight)
        ours.bias.copy_(theirs.bias)

    @classmethod
    def _copy_from_torch(cls, m, norms: tuple) -> "_Block":
        """Build a layer like torch's ``m`` and copy what encoder and decoder layers share:
        self-attention, the FFN and the LayerNorms named in ``norms``."""
        w = m.linear1.weight
        ours = cls(m.self_attn.embed_dim, m.self_attn.num_heads, m.linear1.out_features,
                   dropout=m.dropout.p, layer_norm_eps=m.norm1.eps, device=w.device, dtype=w.dtype,
                   **cls._torch_settings(m))
        ours.self_attn = MultiHeadAttention.from_torch(m.self_attn)
        with torch.no_grad():
            ours.ffn.load_state_dict({"linear1.weight": m.linear1.weight, "linear1.bias": m.linear1.bias,
                                      "linear2.weight": m.linear2.weight, "linear2.bias": m.linear2.bias})
            for name in norms:
                cls._copy_norm(getattr(ours, name), getattr(m, name))
        return ours.train(m.training)

    @staticmethod
    def _torch_settings(m) -> dict:
        act = m.activation
        name = getattr(act, "__name__", type(act).__name__).lower()
        if name not in _ACTIVATIONS:
            raise ValueError(f"activation {act!r} is not supported (relu or gelu only)")
        if not getattr(m.self_attn, "batch_first", False):
            raise ValueError("build the torch layer with batch_first=True")
        return {"norm_first": m.norm_first, "activation": name}


class EncoderLayer(_Block):
    """One Transformer encoder layer: self-attention and FFN, each with residual, dropout and LayerNorm.

    Parameters
    ----------
    d_model : int
        Width of the residual stream.
    num_heads : int
        Attention heads; must divide ``d_model``.
    d_ff : int
        Hidden width of the FFN.
    dropout : float
        Applied to each sublayer's output before the residual addition, to the attention
        weights and inside the FFN (as ``torch.nn.TransformerEncoderLayer``).
    norm_first : bool
        False: post-LN, ``x = LN(x + F(x))`` (the original). True: pre-LN, ``x = x + F(LN(x))``.
    activation : {"relu", "gelu"}
    layer_norm_eps : float
    residual : bool
        False drops both skip connections (only for experiments on why they matter).
    device, dtype : optional

    Attributes
    ----------
    self_attn : MultiHeadAttention
    ffn : FeedForward
    norm1, norm2 : torch.nn.LayerNorm
        The norms of the attention and of the FFN sublayer.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 residual: bool = True, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        _check_layer_settings(d_model, d_ff, dropout, layer_norm_eps)
        self.d_model, self.norm_first, self.residual = int(d_model), bool(norm_first), bool(residual)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, **kw)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation, **kw)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, **kw)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, residual={self.residual}"

    def forward(self, x: torch.Tensor, mask=None, padding_mask=None, need_weights: bool = False):
        """Run the layer.

        Parameters
        ----------
        x : torch.Tensor, shape (B, L, d_model)
        mask : torch.Tensor of bool, optional
            Self-attention mask, True = may attend: (L, L), (B, L, L) or (B, H, L, L).
        padding_mask : torch.Tensor of bool, optional, shape (B, L)
            True on real tokens; padded keys are never attended to.
        need_weights : bool
            Also return the attention weights.

        Returns
        -------
        torch.Tensor, shape (B, L, d_model)
            Or ``(output, {"self": weights (B, H, L, L)})`` when ``need_weights`` is True.

        Raises
        ------
        ValueError
            When ``x`` is not (B, L, d_model) or a mask does not fit (the message names the shapes).
        """
        _check_x(x, self.d_model, module=self)
        B, L, _ = x.shape
        mask = merge_masks(mask, padding_mask, B, L, L, device=x.device)
        store = {}

        def attend(h):
            out, store["self"] = self.self_attn(h, h, h, mask=mask, need_weights=need_weights)
            return out

        x = self._sublayer(x, self.norm1, self.dropout1, attend)
        x = self._sublayer(x, self.norm2, self.dropout2, self.ffn)
        return (x, store) if need_weights else x

    @classmethod
    def from_torch(cls, m: nn.TransformerEncoderLayer) -> "EncoderLayer":
        """A copy of ``torch.nn.TransformerEncoderLayer`` ``m`` (``batch_first=True``), same outputs.

        Call the copy with masks inverted: ``ours(x, mask=~src_mask, padding_mask=~key_padding)``
        equals ``m(x, src_mask=src_mask, src_key_padding_mask=key_padding)`` (torch: True = blocked).

        Parameters
        ----------
        m : torch.nn.TransformerEncoderLayer
            relu or gelu activation, either ``norm_first``.

        Returns
        -------
        EncoderLayer
            On ``m``'s device and dtype, in ``m``'s training mode.

        Raises
        ------
        ValueError
            For another module type, another activation or ``batch_first=False``.
        """
        if not isinstance(m, nn.TransformerEncoderLayer):
            raise ValueError(f"expected torch.nn.TransformerEncoderLayer, got {type(m).__name__}")
        return cls._copy_from_torch(m, norms=("norm1", "norm2"))


class DecoderLayer(_Block):
    """One Transformer decoder layer: causal self-attention, cross-attention to the memory, FFN.

    Each sublayer has its residual connection, dropout and LayerNorm (``norm1``, ``norm2``,
    ``norm3``), placed as in :class:`EncoderLayer`.

    Parameters
    ----------
    d_model, num_heads, d_ff, dropout, norm_first, activation, layer_norm_eps, residual, device, dtype
        As for :class:`EncoderLayer`.

    Attributes
    ----------
    self_attn, cross_attn : MultiHeadAttention
    ffn : FeedForward
    norm1, norm2, norm3 : torch.nn.LayerNorm
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 residual: bool = True, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        _check_layer_settings(d_model, d_ff, dropout, layer_norm_eps)
        self.d_model, self.norm_first, self.residual = int(d_model), bool(norm_first), bool(residual)
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, **kw)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, **kw)
        self.ffn = FeedForward(d_model, d_ff, dropout, activation, **kw)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model, eps=layer_norm_eps, **kw)
                                              for _ in range(3))
        self.dropout1, self.dropout2, self.dropout3 = (nn.Dropout(dropout) for _ in range(3))

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, residual={self.residual}"

    def forward(self, x: torch.Tensor, memory: torch.Tensor, self_mask=None, memory_mask=None,
                padding_mask=None, memory_padding_mask=None, causal: bool = True,
                need_weights: bool = False):
        """Run the layer on the target ``x`` with the encoder output ``memory``.

        Parameters
        ----------
        x : torch.Tensor, shape (B, T, d_model)
            The target sequence so far.
        memory : torch.Tensor, shape (B, S, d_model)
            The encoder's output.
        self_mask : torch.Tensor of bool, optional
            Extra self-attention mask (T, T), (B, T, T) or (B, H, T, T), True = may attend;
            combined with the causal mask when ``causal`` is True.
        memory_mask : torch.Tensor of bool, optional
            Cross-attention mask (T, S), (B, T, S) or (B, H, T, S).
        padding_mask : torch.Tensor of bool, optional, shape (B, T)
            True on real target tokens.
        memory_padding_mask : torch.Tensor of bool, optional, shape (B, S)
            True on real source tokens.
        causal : bool
            Let position t see only targets 0..t (default). False for a non-causal decoder.
        need_weights : bool
            Also return the attention weights of both attention sublayers.

        Returns
        -------
        torch.Tensor, shape (B, T, d_model)
            Or ``(output, {"self": (B, H, T, T), "cross": (B, H, T, S)})`` when ``need_weights``.

        Raises
        ------
        ValueError
            When ``x`` or ``memory`` is not (B, L, d_model), batch sizes differ, or a mask does not
            fit (the message names the shapes).
        """
        _check_x(x, self.d_model, module=self)
        _check_x(memory, self.d_model, "memory", module=self)
        if memory.shape[0] != x.shape[0]:
            raise ValueError(f"x has batch size {x.shape[0]} but memory {memory.shape[0]} "
                             f"(x {tuple(x.shape)}, memory {tuple(memory.shape)})")
        B, T, _ = x.shape
        S = memory.shape[1]
        for name, m in (("self_mask", self_mask), ("memory_mask", memory_mask)):
            if m is not None:
                check_torch_bool_mask(m, name, x.device)
        if causal:
            c = causal_mask(T, device=x.device)
            if self_mask is None:
                self_mask = c
            else:
                if self_mask.shape[-2:] != (T, T):
                    raise ValueError(f"self_mask of shape {tuple(self_mask.shape)} does not end in "
                                     f"(T, T) = {(T, T)}")
                self_mask = self_mask & c
        self_mask = merge_masks(self_mask, padding_mask, B, T, T, device=x.device,
                                names=("self_mask", "padding_mask"))
        memory_mask = merge_masks(memory_mask, memory_padding_mask, B, T, S, device=x.device,
                                  names=("memory_mask", "memory_padding_mask"))
        store = {}

        def attend_self(h):
            out, store["self"] = self.self_attn(h, h, h, mask=self_mask, need_weights=need_weights)
            return out

        def attend_memory(h):
            out, store["cross"] = self.cross_attn(h, memory, memory, mask=memory_mask,
                                                  need_weights=need_weights)
            return out

        x = self._sublayer(x, self.norm1, self.dropout1, attend_self)
        x = self._sublayer(x, self.norm2, self.dropout2, attend_memory)
        x = self._sublayer(x, self.norm3, self.dropout3, self.ffn)
        return (x, store) if need_weights else x

    @classmethod
    def from_torch(cls, m: nn.TransformerDecoderLayer) -> "DecoderLayer":
        """A copy of ``torch.nn.TransformerDecoderLayer`` ``m`` (``batch_first=True``), same outputs.

        ``ours(x, memory, causal=True, padding_mask=~tgt_pad, memory_padding_mask=~mem_pad)`` equals
        ``m(x, memory, tgt_mask=causal_blocked, tgt_key_padding_mask=tgt_pad,
        memory_key_padding_mask=mem_pad)`` (torch: True = blocked).

        Parameters
        ----------
        m : torch.nn.TransformerDecoderLayer

        Returns
        -------
        DecoderLayer
            On ``m``'s device and dtype, in ``m``'s training mode.

        Raises
        ------
        ValueError
            For another module type, another activation or ``batch_first=False``.
        """
        if not isinstance(m, nn.TransformerDecoderLayer):
            raise ValueError(f"expected torch.nn.TransformerDecoderLayer, got {type(m).__name__}")
        ours = cls._copy_from_torch(m, norms=("norm1", "norm2", "norm3"))
        ours.cross_attn = MultiHeadAttention.from_torch(m.multihead_attn)
        return ours.train(m.training)


class _Stack(nn.Module):
    """What the encoder and decoder stacks share: the layers, the optional final norm, the loop."""

    def __init__(self, num_layers: int, make_layer, d_model: int, norm_first: bool, final_norm,
                 layer_norm_eps: float, device, dtype):
        super().__init__()
        num_layers = check_positive_count(num_layers, "num_layers")
        self.layers = nn.ModuleList(make_layer() for _ in range(int(num_layers)))
        final_norm = norm_first if final_norm is None else final_norm
        self.norm = (nn.LayerNorm(d_model, eps=layer_norm_eps, device=device, dtype=dtype)
                     if final_norm else None)

    def _run(self, x: torch.Tensor, call, need_weights: bool):
        """``x = call(layer, x)`` for every layer, then the final norm; collect the weights."""
        weights = []
        for layer in self.layers:
            x = call(layer, x)
            if need_weights:
                x, w = x
                weights.append(w)
        if self.norm is not None:
            x = self.norm(x)
        return (x, weights) if need_weights else x


class TransformerEncoder(_Stack):
    """A stack of ``num_layers`` :class:`EncoderLayer` s, plus a final LayerNorm for pre-LN.

    In a pre-LN stack the residual stream ``x`` itself is never normalised (each sublayer sees
    ``LN(x)``, but adds its output to the raw ``x``), so the stack ends with ``norm``; a post-LN
    stack's output is already the output of a LayerNorm and ``norm`` is None (as in the original
    Transformer and in ``torch.nn.TransformerEncoder(..., norm=None)``).

    Parameters
    ----------
    num_layers : int
    d_model, num_heads, d_ff, dropout, norm_first, activation, layer_norm_eps, residual : optional
        Passed to every :class:`EncoderLayer`.
    final_norm : bool or None
        Add the final LayerNorm; by default exactly when ``norm_first``.
    device, dtype : optional

    Attributes
    ----------
    layers : torch.nn.ModuleList of EncoderLayer
    norm : torch.nn.LayerNorm or None
    """

    def __init__(self, num_layers: int, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 residual: bool = True, final_norm: bool | None = None, device=None, dtype=None):
        super().__init__(num_layers, lambda: EncoderLayer(
            d_model, num_heads, d_ff, dropout, norm_first, activation, layer_norm_eps, residual,
            device=device, dtype=dtype), d_model, norm_first, final_norm, layer_norm_eps, device, dtype)

    def forward(self, x: torch.Tensor, mask=None, padding_mask=None, need_weights: bool = False):
        """Run every layer in turn, then the final norm (if any).

        Parameters
        ----------
        x : torch.Tensor, shape (B, L, d_model)
        mask, padding_mask : optional
            As for :meth:`EncoderLayer.forward`, shared by every layer.
        need_weights : bool

        Returns
        -------
        torch.Tensor, shape (B, L, d_model)
            Or ``(output, [weights dict of each layer])`` when ``need_weights`` is True.
        """
        return self._run(x, lambda layer, h: layer(h, mask=mask, padding_mask=padding_mask,
                                                  need_weights=need_weights), need_weights)

    @classmethod
    def from_torch(cls, m: nn.TransformerEncoder) -> "TransformerEncoder":
        """A copy of ``torch.nn.TransformerEncoder`` ``m`` (its layers and its optional ``norm``).

        Parameters
        ----------
        m : torch.nn.TransformerEncoder

        Returns
        -------
        TransformerEncoder
        """
        if not isinstance(m, nn.TransformerEncoder):
            raise ValueError(f"expected torch.nn.TransformerEncoder, got {type(m).__name__}")
        layers = [EncoderLayer.from_torch(layer) for layer in m.layers]
        first = layers[0]
        ours = cls(len(layers), first.d_model, first.self_attn.num_heads, first.ffn.linear1.out_features,
                   norm_first=first.norm_first, activation=first.ffn.activation,
                   final_norm=m.norm is not None, device=first.norm1.weight.device,
                   dtype=first.norm1.weight.dtype)
        ours.layers = nn.ModuleList(layers)
        if m.norm is not None:
            with torch.no_grad():
                _Block._copy_norm(ours.norm, m.norm)
        return ours.train(m.training)


class TransformerDecoder(_Stack):
    """A stack of ``num_layers`` :class:`DecoderLayer` s, plus a final LayerNorm for pre-LN.

    Parameters
    ----------
    num_layers : int
    d_model, num_heads, d_ff, dropout, norm_first, activation, layer_norm_eps : optional
        Passed to every :class:`DecoderLayer`.
    final_norm : bool or None
        Add the final LayerNorm; by default exactly when ``norm_first``.
    device, dtype : optional

    Attributes
    ----------
    layers : torch.nn.ModuleList of DecoderLayer
    norm : torch.nn.LayerNorm or None
    """

    def __init__(self, num_layers: int, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.1,
                 norm_first: bool = False, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 final_norm: bool | None = None, device=None, dtype=None):
        super().__init__(num_layers, lambda: DecoderLayer(
            d_model, num_heads, d_ff, dropout, norm_first, activation, layer_norm_eps,
            device=device, dtype=dtype), d_model, norm_first, final_norm, layer_norm_eps, device, dtype)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, self_mask=None, memory_mask=None,
                padding_mask=None, memory_padding_mask=None, causal: bool = True,
                need_weights: bool = False):
        """Run every layer in turn on target ``x`` (B, T, d_model) and ``memory`` (B, S, d_model).

        Parameters
        ----------
        x, memory, self_mask, memory_mask, padding_mask, memory_padding_mask, causal, need_weights
            As for :meth:`DecoderLayer.forward`, shared by every layer.

        Returns
        -------
        torch.Tensor, shape (B, T, d_model)
            Or ``(output, [weights dict of each layer])`` when ``need_weights`` is True.
        """
        return self._run(x, lambda layer, h: layer(h, memory, self_mask, memory_mask, padding_mask,
                                                  memory_padding_mask, causal, need_weights),
                         need_weights)
