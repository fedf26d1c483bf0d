r"""Structured attention: the marginals of a linear-chain CRF as attention weights.

Kim, Denton, Hoang and Rush (2017) replace the softmax's "pick one position" by a binary
selection variable per position, :math:`z_j \in \{0, 1\}`, coupled along the chain by a
linear-chain conditional random field (Lafferty et al., 2001):

.. math::

   p(z \mid x, q) = \frac{1}{Z} \exp\Big(\sum_{j=1}^{L} z_j\, s_j + \sum_{j=2}^{L} A_{z_{j-1} z_j}\Big),

with unary scores :math:`s_j` (query-key scores, as in ordinary attention) and a learned
:math:`2 \times 2` transition matrix :math:`A`. The attention weights are the marginals
:math:`p(z_j = 1 \mid x, q)`, computed exactly by the forward-backward algorithm in log space,
and the context is their (unnormalised) expectation :math:`c = \sum_j p(z_j = 1)\, h_j`.
Everything is differentiable by autograd. With :math:`A = 0` the chain falls apart into
independent sigmoids, :math:`p(z_j = 1) = \sigma(s_j)` ("sigmoid attention").
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import check_torch_bool_mask, check_torch_inputs, check_torch_tensor
from attnlib.shapes import check_single_query
from attnlib.torch.attention.scores import MultiplicativeAttention

__all__ = ["crf_unaries", "crf_forward_backward", "crf_log_partition", "crf_marginals",
           "CRFAttention", "_NEG"]


_NEG = -1.0e4   # stands for -inf in the log semiring (see _chain)


def _prepare(scores, transitions, mask):
    check_torch_tensor(scores, "scores", floating=True)
    check_torch_tensor(transitions, "transitions", floating=True)
    if transitions.device != scores.device:
        raise ValueError(f"transitions is on {transitions.device} but scores on {scores.device}: move it with "
                         f"transitions.to('{scores.device}')")
    if mask is not None:
        check_torch_bool_mask(mask, "mask", scores.device)
    if scores.dim() != 2:
        raise ValueError(f"scores must be (B, L), got shape {tuple(scores.shape)}")
    if transitions.shape != (2, 2):
        raise ValueError(f"transitions must be (2, 2), got shape {tuple(transitions.shape)}")
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    elif mask.shape != scores.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)} but scores {tuple(scores.shape)}")
    return mask.bool(), transitions.to(scores.dtype)


def crf_unaries(scores: torch.Tensor) -> torch.Tensor:
    """Unary log-potentials of the binary chain: state 0 scores 0, state 1 scores ``s_j``.

    Parameters
    ----------
    scores : torch.Tensor, shape (B, L)

    Returns
    -------
    torch.Tensor, shape (B, L, 2)
    """
    check_torch_tensor(scores, "scores", floating=True)
    return torch.stack([torch.zeros_like(scores), scores], dim=-1)


def _chain(scores, transitions, mask):
    """Per-position unaries (B, L, 2) and incoming transition matrices (B, L, 2, 2).

    A masked position becomes a pass-through: unary 0 and the identity of the log semiring
    (0 on the diagonal, -inf off it). The first real position gets an all-zero matrix, so coming
    from the start state ``[0, -inf]`` adds nothing. (-inf is written as -1e4: exp(-1e4) is
    exactly 0 in float32 and float64, and no gradient becomes NaN.)
    """
    mask, A = _prepare(scores, transitions, mask)
    unary = crf_unaries(scores) * mask.unsqueeze(-1)
    eye = torch.full((2, 2), _NEG, dtype=scores.dtype, device=scores.device)
    eye.fill_diagonal_(0.0)
    started = (mask.long().cumsum(1) - mask.long()) > 0                 # a real position before j
    trans = torch.where(started[..., None, None], A, torch.zeros_like(A))
    trans = torch.where(mask[..., None, None], trans, eye)
    return unary, trans, mask


def crf_forward_backward(scores: torch.Tensor, transitions: torch.Tensor,
                         mask: torch.Tensor | None = None):
    r"""Forward and backward messages of the binary chain, in log space, in one sweep.

    .. math::

       \alpha_j(z) = u_j(z) + \log \sum_{z'} \exp\big(\alpha_{j-1}(z') + A_{z' z}\big), \qquad
       \beta_j(z) = \log \sum_{z'} \exp\big(A_{z z'} + u_{j+1}(z') + \beta_{j+1}(z')\big),

    with unaries :math:`u_j = (0, s_j)`, :math:`\alpha_1 = u_1` and :math:`\beta_L = 0`. Masked
    positions are skipped (they pass the messages through), so the chain links the real positions
    around them.

    Parameters
    ----------
    scores : torch.Tensor, shape (B, L)
        Unary scores :math:`s_j` of :math:`z_j = 1`.
    transitions : torch.Tensor, shape (2, 2)
        ``transitions[a, b]`` is the log-potential :math:`A_{ab}` of :math:`z_{j-1} = a, z_j = b`.
    mask : torch.BoolTensor, shape (B, L), optional
        True on real positions.

    Returns
    -------
    alpha : torch.Tensor, shape (B, L, 2)
        Forward messages (the unary of position ``j`` included).
    beta : torch.Tensor, shape (B, L, 2)
        Backward messages (the unary of position ``j`` excluded).
    log_z : torch.Tensor, shape (B,)
        :math:`\log Z`; 0 for a row with no real position.
    """
    unary, trans, mask = _chain(scores, transitions, mask)
    B, L = scores.shape
    start = torch.tensor([0.0, _NEG], dtype=scores.dtype, device=scores.device)
    # Both directions at once: index 0 runs left to right (alpha), index 1 right to left with the
    # transposed matrices; gamma_j = u_j + beta_j obeys the same recursion as alpha. The backward
    # sweep starts at position L-1 with beta = 0: an all-zero matrix from the start state.
    trans_back = torch.cat([trans[:, 1:], torch.zeros_like(trans[:, :1])], dim=1).transpose(-1, -2)
    mats = torch.stack([trans, trans_back.flip(1)]).transpose(0, 2).contiguous()   # (L, B, 2, 2, 2)
    mats = mats.transpose(1, 2)                                                     # (L, 2, B, 2, 2)
    units = torch.stack([unary, unary.flip(1)]).permute(2, 0, 1, 3)                 # (L, 2, B, 2)
    msg = start.expand(2, B, 2)
    out = []
    for j in range(L):
        msg = torch.logsumexp(msg.unsqueeze(-1) + mats[j], dim=-2) + units[j]
        out.append(msg)
    out = torch.stack(out)                                                          # (L, 2, B, 2)
    alphas, gammas = out[:, 0].transpose(0, 1), out[:, 1].flip(0).transpose(0, 1)
    alpha, beta = alphas, gammas - unary
    log_z = torch.logsumexp(alpha[:, -1], dim=-1)
    return alpha, beta, torch.where(mask.any(-1), log_z, torch.zeros_like(log_z))


def crf_log_partition(scores: torch.Tensor, transitions: torch.Tensor,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The log-partition function :math:`\log Z = \log \sum_z \exp(\text{score}(z))` (forward algorithm).

    Parameters
    ----------
    scores : torch.Tensor, shape (B, L)
        Unary scores :math:`s_j` of :math:`z_j = 1`.
    transitions : torch.Tensor, shape (2, 2)
    mask : torch.BoolTensor, shape (B, L), optional
        True on real positions; a row with none gets :math:`\log Z = 0` (one empty assignment).

    Returns
    -------
    torch.Tensor, shape (B,)
    """
    return crf_forward_backward(scores, transitions, mask)[2]


def crf_marginals(scores: torch.Tensor, transitions: torch.Tensor,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Marginals :math:`p(z_j = 1 \mid x)` of the binary chain, by forward-backward in log space.

    .. math:: p(z_j = z) = \exp\big(\alpha_j(z) + \beta_j(z) - \log Z\big)

    Parameters
    ----------
    scores : torch.Tensor, shape (B, L)
    transitions : torch.Tensor, shape (2, 2)
    mask : torch.BoolTensor, shape (B, L), optional

    Returns
    -------
    torch.Tensor, shape (B, L)
        In [0, 1]; exactly 0 at masked positions. They need not sum to 1.
    """
    mask, _ = _prepare(scores, transitions, mask)
    alpha, beta, log_z = crf_forward_backward(scores, transitions, mask)
    p = torch.exp(alpha[..., 1] + beta[..., 1] - log_z[:, None])
    return torch.where(mask, p, torch.zeros_like(p))


class CRFAttention(nn.Module):
    r"""Structured (segmentation) attention: weights are linear-chain CRF marginals.

    Scores :math:`s_j = q^\top W h_j` (Luong's *general* score), a learned transition matrix
    :math:`A` (2, 2), weights :math:`p_j = p(z_j = 1 \mid x, q)` and context
    :math:`c = \sum_j p_j h_j` (or :math:`\sum_j p_j h_j / \sum_j p_j` with ``normalize=True``).

    Parameters
    ----------
    query_size, key_size : int
    pairwise : bool
        Learn the transitions. False fixes :math:`A = 0`: independent sigmoids.
    normalize : bool
        Divide the context by the total weight (a weighted average, like softmax attention).

    Attributes
    ----------
    transitions : nn.Parameter or torch.Tensor, shape (2, 2)
    """

    def __init__(self, query_size: int, key_size: int, pairwise: bool = True, normalize: bool = False):
        super().__init__()
        self.query_size, self.key_size, self.normalize = query_size, key_size, normalize
        self.score = MultiplicativeAttention(query_size, key_size, score="general")
        if pairwise:
            self.transitions = nn.Parameter(torch.zeros(2, 2))
        else:
            self.register_buffer("transitions", torch.zeros(2, 2))

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Unary scores: query (B, H_q), keys (B, L, H_k) -> (B, L)."""
        return self.score.scores(query, keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None):
        """Attend with CRF marginals.

        Parameters
        ----------
        query : torch.Tensor, shape (B, H_q)
        keys : torch.Tensor, shape (B, L, H_k)
        mask : torch.BoolTensor, shape (B, L), optional

        Returns
        -------
        context : torch.Tensor, shape (B, H_k)
        weights : torch.Tensor, shape (B, L)
            The marginals :math:`p(z_j = 1)`.
        """
        check_torch_inputs({"query": query, "keys": keys}, module=self)
        if mask is not None:
            check_torch_bool_mask(mask, "mask", keys.device)
        check_single_query(query, keys, mask, self.query_size, self.key_size)
        p = crf_marginals(self.scores(query, keys), self.transitions, mask)
        context = torch.einsum("bl,blh->bh", p, keys)
        if self.normalize:
            context = context / p.sum(-1, keepdim=True).clamp_min(1e-9)
        return context, p
