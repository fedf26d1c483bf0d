"""Scaled dot-product attention in PyTorch: the twin of :func:`attnlib.numpy.scaled_dot_product_attention`."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from attnlib.checks import check_probability, check_same_dtype_and_device, check_torch_bool_mask, check_torch_tensor
from attnlib.shapes import attention_scores_shape, check_mask_shape
from attnlib.torch.attention.masks import fully_masked_rows

__all__ = ["scaled_dot_product_attention"]


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask, bias=None, dropout_p=0.0) -> tuple:
    """Check types, dtypes, devices and shapes (rules shared with the NumPy twin); return the scores' shape."""
    for name, role, t in (("q", "queries", q), ("k", "keys", k), ("v", "values", v)):
        check_torch_tensor(t, name)
        if not t.is_floating_point():
            raise ValueError(f"{role} {name} must be floating point, got dtype {t.dtype}: use {name}.float()")
    check_same_dtype_and_device({"q": q, "k": k, "v": v})
    scores_shape = attention_scores_shape(q.shape, k.shape, v.shape)
    if mask is not None:
        check_torch_bool_mask(mask, "mask", q.device)
        check_mask_shape(mask.shape, scores_shape)
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
            raise ValueError("bias must be a floating-point tensor added to the scores, got "
                             f"{getattr(bias, 'dtype', type(bias).__name__)}")
        if bias.device != q.device:
            raise ValueError(f"bias is on {bias.device} but q on {q.device}: move it with "
                             f"bias.to('{q.device}')")
        try:
            broadcast = torch.broadcast_shapes(tuple(bias.shape), tuple(scores_shape))
        except RuntimeError:
            broadcast = None
        if broadcast != tuple(scores_shape):
            raise ValueError(f"bias of shape {tuple(bias.shape)} does not broadcast to the scores' "
                             f"shape {tuple(scores_shape)}")
    if dropout_p != 0.0:  # the common case, 0.0 (a float or an int), needs no further look
        check_probability(dropout_p, "dropout_p")
    return scores_shape


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None,
                                 dropout_p: float = 0.0, need_weights: bool = True, bias=None):
    r"""softmax(Q K^T / sqrt(d_k)) V, batch-first, on whatever device the inputs are.

    Parameters
    ----------
    q : torch.Tensor, shape (..., L_q, d_k)
    k : torch.Tensor, shape (..., L_k, d_k)
    v : torch.Tensor, shape (..., L_k, d_v)
    mask : torch.Tensor of bool, optional
        Broadcastable to (..., L_q, L_k); True = may attend. A query with no allowed key gets
        zero weights and a zero output, on both paths. (PyTorch is not uniform there: on the
        CPU, with torch 2.13, ``torch.nn.functional.scaled_dot_product_attention`` also returns a
        zero output, while ``torch.nn.MultiheadAttention`` returns NaN output and weights with
        its default ``need_weights=True``; the chapter "From NumPy to PyTorch" shows both, and
        ``tests/test_evidence_ch4_8.py`` checks them. GPU kernels were not checked.)
    dropout_p : float
        Dropout on the attention weights (use 0 at evaluation time).
    need_weights : bool
        With False, return ``(output, None)`` through PyTorch's fused kernel, which never
        materialises the (L_q, L_k) weights.
    bias : torch.Tensor of float, optional
        Broadcastable to (..., L_q, L_k): added to the scaled scores before the mask and the
        softmax, :math:`\mathrm{softmax}(Q K^\top / \sqrt{d_k} + \mathrm{bias})` (e.g. ALiBi's
        distance penalties, :func:`attnlib.torch.alibi_bias`).

    Returns
    -------
    output : torch.Tensor, shape (..., L_q, d_v)
    weights : torch.Tensor, shape (..., L_q, L_k), or None when ``need_weights`` is False
    """
    scores_shape = _check(q, k, v, mask, bias, dropout_p)
    row_ok = None
    if mask is not None:
        # Rows with no allowed key attend everywhere here; their output and weights are zeroed below.
        mask, row_ok = fully_masked_rows(mask)
    if not need_weights:
        # torch's SDPA does not broadcast every batch combination (e.g. a mask with more batch
        # dims than q and k): give it q, k, v with the full batch (views; no-ops when equal).
        batch = scores_shape[:-2]
        q, k, v = (t.expand(*batch, *t.shape[-2:]) for t in (q, k, v))
        if mask is not None and mask.dim() < 2:  # SDPA wants at least (L_q, L_k)
            mask = mask.expand(scores_shape[-2:])
        if bias is not None:  # one float mask: the bias where allowed, -inf where not
            attn = bias.to(q.dtype)
            if mask is not None:
                attn = attn.masked_fill(~mask, float("-inf"))
            mask = attn.expand(scores_shape) if attn.dim() < 2 else attn
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        if row_ok is not None:
            out = out * row_ok.to(out.dtype)
        return out, None
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    # Values may carry batch dims that queries and keys lack: weights span the full batch.
    scores = scores.expand(scores_shape)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if needs_grad or not scores.is_contiguous():
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
    else:
        # Inference: reuse the scores' memory. At (4, 8, 1024, 64) the weights are 128 MiB, and
        # allocating (and page-faulting) a second such tensor costs as much as the softmax itself.
        if mask is not None:
            scores.masked_fill_(~mask, float("-inf"))
        weights = _softmax_(scores)
    if row_ok is not None:
        weights = weights * row_ok.to(weights.dtype)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights


def _softmax_(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, in place (max-subtracted; every row has a finite entry).

    PyTorch's own softmax kernel, written over its input, reads each row once while it is in
    cache; the public fallback makes five passes over the whole tensor.
    """
    try:
        return torch.ops.aten._softmax.out(scores, -1, False, out=scores)
    except (AttributeError, RuntimeError):  # an op PyTorch may rename: keep a public fallback
        scores.sub_(scores.amax(dim=-1, keepdim=True)).exp_()
        return scores.div_(scores.sum(dim=-1, keepdim=True))
