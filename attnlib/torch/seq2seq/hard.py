r"""Hard (stochastic) attention trained with REINFORCE, next to soft attention.

Soft attention takes the expectation :math:`c = \sum_j \alpha_j h_j`. Hard attention (Xu et al.,
2015; Mnih et al., 2014) *samples* one position, :math:`z \sim \mathrm{Categorical}(\alpha)`, and
uses :math:`c = h_z`. Sampling has no gradient, so the attention parameters learn from the
score-function estimator (Williams, 1992):

.. math::

   \nabla_\theta\, \mathbb{E}_{z \sim p_\theta}[r(z)] = \mathbb{E}_{z \sim p_\theta}\big[(r(z) - b)\,
   \nabla_\theta \log p_\theta(z)\big],

which holds for any baseline :math:`b` that does not depend on :math:`z`; a good :math:`b`
(here a moving average of past rewards) lowers the variance of the one-sample estimate.
"""
from __future__ import annotations

import torch
from torch import nn

from attnlib.checks import check_probability, check_torch_bool_mask, check_torch_inputs, check_torch_tensor
from attnlib.shapes import check_single_query
from attnlib.torch.attention.masks import masked_softmax

__all__ = ["HardAttention", "reinforce_loss", "MovingAverageBaseline"]


class HardAttention(nn.Module):
    """Sample one source position from an attention module's distribution; its state is the context.

    Parameters
    ----------
    attention : nn.Module
        Any attention with ``scores(query, keys) -> (B, L)`` (e.g.
        :class:`~attnlib.torch.MultiplicativeAttention`, :class:`~attnlib.torch.AdditiveAttention`).
    """

    def __init__(self, attention: nn.Module):
        super().__init__()
        if not callable(getattr(attention, "scores", None)):
            raise TypeError(f"attention must have a scores(query, keys) method (e.g. MultiplicativeAttention), "
                            f"got {type(attention).__name__}")
        self.attention = attention

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                sample: bool | None = None):
        """Choose a position and return its state.

        Parameters
        ----------
        query : torch.Tensor, shape (B, H_q)
        keys : torch.Tensor, shape (B, L, H_k)
        mask : torch.BoolTensor, shape (B, L), optional
            True on real positions; masked positions are never chosen.
        sample : bool, optional
            Sample from the distribution (default: in training mode) or take its argmax.

        Returns
        -------
        context : torch.Tensor, shape (B, H_k)
            ``keys[b, index[b]]``: exactly one encoder state.
        weights : torch.Tensor, shape (B, L)
            The distribution the position was drawn from.
        index : torch.LongTensor, shape (B,)
        log_prob : torch.Tensor, shape (B,)
            ``log weights[b, index[b]]``, differentiable with respect to the scores.
        """
        check_torch_inputs({"query": query, "keys": keys}, module=self)
        if mask is not None:
            check_torch_bool_mask(mask, "mask", keys.device)
        check_single_query(query, keys, mask, getattr(self.attention, "query_size", query.shape[-1]),
                           getattr(self.attention, "key_size", keys.shape[-1]))
        weights = masked_softmax(self.attention.scores(query, keys), mask)
        sample = self.training if sample is None else sample
        if sample:
            index = torch.multinomial(weights.detach(), 1).squeeze(-1)
        else:
            index = weights.detach().argmax(-1)
        log_prob = torch.log(weights.gather(1, index[:, None]).squeeze(1).clamp_min(1e-30))
        context = keys[torch.arange(len(keys), device=keys.device), index]
        return context, weights, index, log_prob


def reinforce_loss(log_probs: torch.Tensor, rewards: torch.Tensor, baseline=0.0) -> torch.Tensor:
    r"""The REINFORCE surrogate loss :math:`-\frac{1}{N}\sum_i (r_i - b)\, \log p(z_i)`.

    Its gradient is minus the score-function estimate of :math:`\nabla\, \mathbb{E}[r]`. The
    advantage :math:`r - b` is detached: rewards and baseline are constants for this gradient.

    Parameters
    ----------
    log_probs : torch.Tensor, shape (N,)
        Log-probabilities of the sampled choices (carry gradients).
    rewards : torch.Tensor, shape (N,)
    baseline : float or torch.Tensor, shape () or (N,)

    Returns
    -------
    torch.Tensor, shape ()
    """
    for name, t in (("log_probs", log_probs), ("rewards", rewards)):  # dtypes may differ: they promote
        check_torch_tensor(t, name, floating=True)
    if log_probs.shape != rewards.shape:
        raise ValueError(f"log_probs {tuple(log_probs.shape)} and rewards {tuple(rewards.shape)} differ")
    advantage = (rewards - baseline).detach()
    return -(advantage * log_probs).mean()


class MovingAverageBaseline(nn.Module):
    """An exponential moving average of the mean reward: ``b <- m b + (1 - m) mean(r)``.

    Calling it returns the current value (a tensor) and then updates it with the batch, so the
    baseline used for a batch never depends on that batch's own rewards.

    Parameters
    ----------
    momentum : float
        In [0, 1).
    """

    def __init__(self, momentum: float = 0.9):
        super().__init__()
        check_probability(momentum, "momentum")
        self.momentum = momentum
        self.register_buffer("value", torch.zeros(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        """rewards (N,) -> the baseline () before this batch's update."""
        check_torch_tensor(rewards, "rewards", floating=True)
        if rewards.numel() == 0:
            raise ValueError("rewards must hold at least one reward, got an empty tensor")
        mean = rewards.detach().mean().to(self.value.dtype)
        current = self.value.clone() if self.count > 0 else mean.clone()
        self.value.copy_(mean if self.count == 0 else self.momentum * self.value + (1 - self.momentum) * mean)
        self.count += 1
        return current
