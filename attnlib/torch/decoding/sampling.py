r"""Sampling the next token: temperature, top-k and top-p (nucleus), the distribution and the draw.

:func:`next_token_probs` is the distribution a language model's next token is drawn from:
:math:`\mathrm{softmax}(z / \tau)` at temperature :math:`\tau`, restricted to the ``top_k``
largest logits and then to the nucleus of ``top_p`` (the fewest most likely tokens whose
probabilities sum to at least ``top_p``, Holtzman et al., 2020), renormalised. :func:`sample_next`
draws from it (the argmax when :math:`\tau = 0`). :meth:`attnlib.torch.GPT.generate` calls
:func:`sample_next` once per new token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlib.checks import TorchTypeError, check_positive_count, check_real, check_torch_tensor

__all__ = ["check_sampling", "next_token_probs", "sample_next"]


def check_sampling(temperature, top_k, top_p=None) -> None:
    """Raise ValueError unless temperature is a real number >= 0, top_k is None or a positive
    integer and top_p is None or a real number with 0 < top_p <= 1."""
    try:
        ok = check_real(temperature, "temperature") >= 0
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None:
        try:
            check_positive_count(top_k, "top_k")
        except ValueError:
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}") from None
    if top_p is not None:
        try:
            ok = 0 < check_real(top_p, "top_p") <= 1
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"top_p must be a number with 0 < top_p <= 1 (1 keeps every token) or None, "
                             f"got {top_p!r}")


def _check_logits(logits, two_d: bool) -> None:
    check_torch_tensor(logits, "logits", floating=True)
    if two_d and logits.dim() != 2:
        hint = ": add the batch axis with logits[None]" if logits.dim() == 1 else ""
        raise ValueError(f"logits must have shape (B, vocab_size), got shape {tuple(logits.shape)}{hint}")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., vocab_size) with vocab_size >= 1, got shape "
                         f"{tuple(logits.shape)}")


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    r"""The distribution the next token is sampled from: :math:`\mathrm{softmax}(z / \tau)`, top-k, then top-p.

    Parameters
    ----------
    logits : torch.Tensor, shape (..., vocab_size)
    temperature : float
        :math:`\tau`; 0 gives a one-hot distribution on the most likely token (greedy).
    top_k : int, optional
        Keep the ``top_k`` largest logits, set the others to :math:`-\infty` (probability 0).
    top_p : float, optional
        Nucleus sampling, :math:`0 < p \le 1`: after temperature and top-k, keep the most likely
        tokens, in order of probability, until their probabilities sum to at least ``top_p`` (the
        most likely token is always kept), and renormalise over them. 1 keeps every token.

    Returns
    -------
    torch.Tensor, shape (..., vocab_size)
        Probabilities (rows sum to 1).
    """
    check_sampling(temperature, top_k, top_p)
    _check_logits(logits, two_d=False)
    if temperature == 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    z = logits / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        probs = torch.softmax(z, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_p.cumsum(dim=-1) - sorted_p      # probability of the tokens ranked above
        drop_sorted = mass_before >= top_p                    # the nucleus already holds top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        z = z.masked_fill(drop, float("-inf"))
    return torch.softmax(z, dim=-1)


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                generator: torch.Generator | None = None, top_p: float | None = None) -> torch.Tensor:
    """Sample one token per row from :func:`next_token_probs` (argmax when temperature is 0).

    Parameters
    ----------
    logits : torch.Tensor, shape (B, vocab_size)
    temperature : float
    top_k : int, optional
    generator : torch.Generator, optional
    top_p : float, optional
        Nucleus sampling (see :func:`next_token_probs`).

    Returns
    -------
    torch.Tensor of int64, shape (B,)

    Raises
    ------
    ValueError
        For logits that are not (B, vocab_size) (1-D logits lack the batch axis), a negative
        temperature, a ``top_k`` that is not a positive integer or a ``top_p`` outside (0, 1].
    """
    check_sampling(temperature, top_k, top_p)
    _check_logits(logits, two_d=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TorchTypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if temperature == 0:
        return logits.argmax(-1)
    probs = next_token_probs(logits, temperature, top_k, top_p)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
