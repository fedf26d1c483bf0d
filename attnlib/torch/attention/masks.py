"""Boolean attention masks in PyTorch, and the one masked softmax every torch path uses.

The twins of :mod:`attnlib.numpy.masks`: same names, same signatures (plus ``device``), same
convention, True = may attend, broadcastable to the scores' shape (..., L_q, L_k). The rule for a
query row with no allowed key (all-zero weights and a zero output, never NaN) is written once,
in :func:`fully_masked_rows`, and used by :func:`masked_softmax` and
:func:`attnlib.torch.scaled_dot_product_attention`.
"""
from __future__ import annotations

import torch

from attnlib.checks import check_torch_bool_mask, check_torch_lengths, check_torch_tensor
from attnlib.shapes import check_count, check_mask_shape

__all__ = ["causal_mask", "padding_mask", "merge_masks", "decoder_self_mask", "fully_masked_rows",
           "masked_softmax"]


def causal_mask(L_q: int, L_k: int | None = None, device=None) -> torch.Tensor:
    """Mask that lets query ``i`` attend to keys ``j <= i`` only (no peeking at the future).

    Parameters
    ----------
    L_q : int
        Number of queries.
    L_k : int, optional
        Number of keys; defaults to ``L_q``.
    device : torch.device, optional

    Returns
    -------
    torch.Tensor of bool, shape (L_q, L_k)
        ``mask[i, j]`` is True where ``j <= i``.
    """
    L_k = L_q if L_k is None else L_k
    L_q, L_k = check_count(L_q, "L_q"), check_count(L_k, "L_k")
    return torch.arange(L_k, device=device)[None, :] <= torch.arange(L_q, device=device)[:, None]


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Mask that marks the real (non-padding) tokens of each sequence in a batch.

    Parameters
    ----------
    lengths : torch.Tensor of int, shape (B,)
        The true length of each sequence (the mask lands on its device).
    max_len : int
        The padded length.

    Returns
    -------
    torch.Tensor of bool, shape (B, max_len)
        ``mask[b, t]`` is True where ``t < lengths[b]``; as a key mask for scores (B, L_q, L_k)
        index it as ``mask[:, None, :]``.
    """
    max_len = check_count(max_len, "max_len")
    check_torch_lengths(lengths, "lengths")
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > max_len):
        raise ValueError(f"lengths must lie in [0, max_len={max_len}], got {lengths.tolist()}")
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def merge_masks(mask, padding_mask, B: int, L_q: int, L_k: int, *, device=None,
                names: tuple = ("mask", "padding_mask")):
    """Combine an attention mask and a key padding mask into one mask (True = may attend).

    Parameters
    ----------
    mask : torch.Tensor of bool or None
        Shape (L_q, L_k), (B, L_q, L_k) or (B, H, L_q, L_k).
    padding_mask : torch.Tensor of bool or None, shape (B, L_k)
        True on real keys, False on padding.
    B, L_q, L_k : int
        Batch size, number of queries and of keys, to check the shapes.
    device : torch.device, optional
        Where the masks must be (that of the inputs they mask).
    names : tuple of 2 str
        The caller's names of ``mask`` and ``padding_mask``, for the error messages.

    Returns
    -------
    torch.Tensor of bool or None
        ``mask`` unchanged when there is no padding mask; otherwise a 4-D mask
        (B or 1, H or 1, L_q or 1, L_k); None when both are None.

    Raises
    ------
    ValueError
        When ``padding_mask`` is not a boolean (B, L_k) tensor or ``mask`` has 1 or 5+ axes, or
        a mask is on another device than ``device``.
    """
    mask_name, pad_name = names
    if mask is not None:
        check_torch_bool_mask(mask, mask_name, device)
    if padding_mask is None:
        return mask
    check_torch_bool_mask(padding_mask, pad_name, device)
    if tuple(padding_mask.shape) != (B, L_k):
        raise ValueError(f"{pad_name} must be a boolean tensor of shape (B, L_k) = {(B, L_k)}, "
                         f"True on real tokens; got shape {tuple(padding_mask.shape)}")
    pad = padding_mask[:, None, None, :]  # (B, 1, 1, L_k)
    if mask is None:
        return pad
    if not 2 <= mask.dim() <= 4:
        raise ValueError(f"{mask_name} must be a boolean tensor of shape (L_q, L_k), (B, L_q, L_k) or "
                         f"(B, H, L_q, L_k), got shape {tuple(mask.shape)}")
    if mask.dim() == 3:
        mask = mask[:, None]  # (B, 1, L_q, L_k): the same for every head
    return mask & pad


def decoder_self_mask(tgt_lengths: torch.Tensor, T: int) -> torch.Tensor:
    """The decoder's self-attention mask: causal and padding combined, True = may attend.

    Query t of example b may attend to key j when ``j <= t`` (no peeking at the future) and
    ``j < tgt_lengths[b]`` (no padding).

    Parameters
    ----------
    tgt_lengths : torch.LongTensor, shape (B,)
    T : int
        Padded target length.

    Returns
    -------
    torch.Tensor of bool, shape (B, T, T)
    """
    check_torch_lengths(tgt_lengths, "tgt_lengths")
    return causal_mask(T, device=tgt_lengths.device)[None] & padding_mask(tgt_lengths, T)[:, None, :]


def fully_masked_rows(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The fully-masked-row rule: let such rows attend everywhere, and say which rows are real.

    A softmax over a row with no allowed key would be 0/0. Opening the row keeps every value
    and gradient finite; multiplying the result by ``row_ok`` then gives that row all-zero
    weights (and so a zero output).

    Parameters
    ----------
    mask : torch.Tensor of bool, shape (..., L_q, L_k)
        True = may attend.

    Returns
    -------
    opened : torch.Tensor of bool, shape (..., L_q, L_k)
        ``mask`` with every fully masked row set to True.
    row_ok : torch.Tensor of bool, shape (..., L_q, 1)
        True where the row had at least one allowed key.
    """
    check_torch_bool_mask(mask)
    row_ok = mask.any(dim=-1, keepdim=True)
    return mask | ~row_ok, row_ok


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax over the last axis where ``mask`` is True; masked entries get weight exactly 0.

    Parameters
    ----------
    scores : torch.Tensor, shape (..., L)
    mask : torch.BoolTensor, broadcastable to (..., L), optional
        True = may attend. A row with no True gets all-zero weights (never NaN).

    Returns
    -------
    torch.Tensor, shape (..., L)

    Raises
    ------
    ValueError
        When ``scores`` is not a floating-point tensor, or ``mask`` is not boolean, sits on another
        device or does not broadcast to the scores' shape (the message names both shapes).
    """
    check_torch_tensor(scores, "scores", floating=True)
    if mask is None:
        return torch.softmax(scores, dim=-1)
    check_torch_bool_mask(mask, "mask", scores.device)
    check_mask_shape(mask.shape, scores.shape)
    opened, row_ok = fully_masked_rows(mask)
    weights = torch.softmax(scores.masked_fill(~opened, float("-inf")), dim=-1)
    return weights * row_ok
