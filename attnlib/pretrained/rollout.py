r"""Attention rollout (Abnar and Zuidema, 2020): how much each input token feeds each output token.

One layer's attention says where a token looks *in that layer's input*, which after the first
layer is already a mixture of tokens. Rollout follows the mixing through the stack. The residual
connection passes every token on to itself, so each layer's head-averaged weights are mixed with
the identity and the rows renormalised,

.. math::

    \hat A^{(l)} = \tfrac12\, \bar A^{(l)} + \tfrac12 I, \qquad
    \tilde A^{(l)} = \hat A^{(l)} \text{ with rows divided by their sums},

and the rollout up to layer :math:`l` is the product
:math:`R^{(l)} = \tilde A^{(l)} \tilde A^{(l-1)} \cdots \tilde A^{(1)}`.
:math:`R^{(l)}_{ij}` sums, over every path from input token :math:`j` up to token :math:`i` at
layer :math:`l`, the product of the weights along the path. It is a heuristic: it ignores the
values, the feed-forward networks and the norms.
"""
from __future__ import annotations

from typing import Sequence

import torch

from attnlib.checks import check_probability, check_same_dtype_and_device, check_torch_tensor

__all__ = ["attention_rollout"]


def attention_rollout(attentions: Sequence[torch.Tensor], residual: float = 0.5, head_fusion: str = "mean",
                      all_layers: bool = False) -> torch.Tensor:
    """Roll attention out through the layers.

    Parameters
    ----------
    attentions : sequence of torch.Tensor, each (..., H, L, L)
        Every layer's attention weights, first layer first (e.g. ``EncoderOutput.attentions``).
    residual : float
        Weight of the identity (the skip connection) in each layer's mixture, in [0, 1].
        0 multiplies the raw head-averaged weights.
    head_fusion : {"mean", "max", "min"}
        How the heads of a layer are combined.
    all_layers : bool
        Return the rollout after every layer, not only after the last.

    Returns
    -------
    torch.Tensor
        Shape (..., L, L) (rows sum to 1 where the attention rows did), or
        (num_layers, ..., L, L) with ``all_layers``.

    Raises
    ------
    ValueError
        For an empty sequence, shapes that differ or are not square, or an unknown fusion.
    """
    if isinstance(attentions, (str, bytes)) or not hasattr(attentions, "__len__"):
        raise TypeError(f"attentions must be a sequence of (..., H, L, L) tensors, one per layer, got "
                        f"{type(attentions).__name__}")
    if len(attentions) == 0:
        raise ValueError("attentions is empty: pass one (..., H, L, L) tensor per layer")
    for a in attentions:
        check_torch_tensor(a, "attentions[i]", floating=True)
    shape = tuple(attentions[0].shape)
    if len(shape) < 3 or shape[-1] != shape[-2]:
        raise ValueError(f"each layer's attention must be (..., H, L, L), got shape {shape}")
    if any(tuple(a.shape) != shape for a in attentions):
        raise ValueError(f"every layer's attention must have the same shape; got "
                         f"{[tuple(a.shape) for a in attentions]}")
    check_same_dtype_and_device({f"attentions[{i}]": a for i, a in enumerate(attentions)})
    check_probability(residual, "residual", allow_one=True)
    fuse = {"mean": lambda a: a.mean(-3), "max": lambda a: a.amax(-3), "min": lambda a: a.amin(-3)}
    if not isinstance(head_fusion, str) or head_fusion not in fuse:
        raise ValueError(f"head_fusion must be 'mean', 'max' or 'min', got {head_fusion!r}")
    eye = torch.eye(shape[-1], dtype=attentions[0].dtype, device=attentions[0].device)
    rollout, steps = None, []
    for a in attentions:
        a = (1.0 - residual) * fuse[head_fusion](a) + residual * eye
        a = a / a.sum(-1, keepdim=True).clamp(min=torch.finfo(a.dtype).tiny)
        rollout = a if rollout is None else a @ rollout
        steps.append(rollout)
    return torch.stack(steps) if all_layers else rollout
