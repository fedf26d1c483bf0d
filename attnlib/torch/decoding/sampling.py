r"""Sampling the next token: temperature and top-k, the distribution and the draw.

:func:`next_token_probs` is the distribution a language model's next token is drawn from,
:math:`\mathrm{softmax}(z / T)` over the ``top_k`` largest logits; :func:`sample_next` draws from
it (the argmax when :math:`T = 0`). :meth:`attnlib.torch.GPT.generate` calls :func:`sample_next`
once per new token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from attnlib.checks import TorchTypeError, check_positive_count, check_real, check_torch_tensor

__all__ = ["check_sampling", "next_token_probs", "sample_next"]


def check_sampling(temperature, top_k) -> None:
    """Raise ValueError unless temperature is a real number >= 0 and top_k is None or a positive integer."""
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


def _check_logits(logits, two_d: bool) -> None:
    check_torch_tensor(logits, "logits", floating=True)
    if two_d and logits.dim() != 2:
        hint = ": add the batch axis with logits[None]" if logits.dim() == 1 else ""
        raise ValueError(f"logits must have shape (B, vocab_size), got shape {tuple(logits.shape)}{hint}")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., vocab_size) with vocab_size >= 1, got shape "
                         f"{tuple(logits.shape)}")


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
    check_sampling(temperature, top_k)
    _check_logits(logits, two_d=False)
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

    Raises
    ------
    ValueError
        For logits that are not (B, vocab_size) (1-D logits lack the batch axis), a negative
        temperature or a ``top_k`` that is not a positive integer.
    """
    check_sampling(temperature, top_k)
    _check_logits(logits, two_d=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TorchTypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if temperature == 0:
        return logits.argmax(-1)
    probs = next_token_probs(logits, temperature, top_k)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
