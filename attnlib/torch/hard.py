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
import torch.nn.functional as F
from torch import nn

from attnlib.torch.additive import _check, attention_context, masked_softmax
from attnlib.torch.multiplicative import MultiplicativeAttention

__all__ = ["HardAttention", "reinforce_loss", "MovingAverageBaseline", "LookupModel", "lookup_loss",
           "lookup_accuracy", "attention_gradients", "gradient_variance"]


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
        _check(query, keys, mask, getattr(self.attention, "query_size", query.shape[-1]),
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
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.register_buffer("value", torch.zeros(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def forward(self, rewards: torch.Tensor) -> torch.Tensor:
        """rewards (N,) -> the baseline () before this batch's update."""
        mean = rewards.detach().mean().to(self.value.dtype)
        current = self.value.clone() if self.count > 0 else mean.clone()
        self.value.copy_(mean if self.count == 0 else self.momentum * self.value + (1 - self.momentum) * mean)
        self.count += 1
        return current


class LookupModel(nn.Module):
    """Key-value lookup by attention: embed (key, value) pairs, attend with the query key, classify.

    ``h_j = E_key[k_j] + E_value[v_j]``, ``q = E_query[query]``, general scores ``q . W h_j``, then
    either the soft context :math:`\\sum_j \\alpha_j h_j` or a sampled :math:`h_z`, and an MLP.

    Parameters
    ----------
    n_keys : int
        Number of key ids, padding (0) included.
    n_values : int
        Number of value classes.
    dim : int
    mode : str
        ``"soft"`` or ``"hard"``; may be changed later (``model.mode = "hard"``).
    """

    def __init__(self, n_keys: int, n_values: int, dim: int = 32, mode: str = "soft"):
        super().__init__()
        self.key_embed = nn.Embedding(n_keys, dim, padding_idx=0)
        self.value_embed = nn.Embedding(n_values, dim)
        self.query_embed = nn.Embedding(n_keys, dim)
        self.attention = MultiplicativeAttention(dim, dim, score="general")
        self.hard = HardAttention(self.attention)
        self.out = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, n_values))
        self.mode = mode

    @property
    def mode(self) -> str:
        """``"soft"`` or ``"hard"``."""
        return self._mode

    @mode.setter
    def mode(self, value: str):
        if value not in ("soft", "hard"):
            raise ValueError(f"mode must be 'soft' or 'hard', got {value!r}")
        self._mode = value

    def forward(self, keys, values, query, mask, sample: bool | None = None):
        """Classify a batch.

        Parameters
        ----------
        keys, values : torch.LongTensor, shape (B, L)
        query : torch.LongTensor, shape (B,)
        mask : torch.BoolTensor, shape (B, L)
        sample : bool, optional
            Hard mode only: sample (default in training mode) or take the argmax.

        Returns
        -------
        logits : torch.Tensor, shape (B, n_values)
        weights : torch.Tensor, shape (B, L)
        log_prob : torch.Tensor, shape (B,), or None in soft mode
        """
        h = self.key_embed(keys) + self.value_embed(values)
        q = self.query_embed(query)
        if self.mode == "soft":
            weights = masked_softmax(self.attention.scores(q, h), mask)
            return self.out(attention_context(weights, h)), weights, None
        context, weights, _, log_prob = self.hard(q, h, mask, sample=sample)
        return self.out(context), weights, log_prob


def lookup_loss(model: LookupModel, batch, baseline=None, return_parts: bool = False):
    """Training loss of :class:`LookupModel` (a ``loss_fn`` for :func:`attnlib.torch.train`).

    Soft mode: the cross-entropy. Hard mode: the cross-entropy of the sampled context (it trains the
    embeddings and the classifier) plus :func:`reinforce_loss` for the attention, with reward
    :math:`r = \\log p(y \\mid h_z)` (the log-likelihood, as in Xu et al.) and the baseline.

    Parameters
    ----------
    model : LookupModel
    batch : namespace with keys, values, query, mask, target
    baseline : None, float, torch.Tensor or callable
        None: no baseline (b = 0). A callable (e.g. :class:`MovingAverageBaseline`) is called with
        the rewards and returns b.
    return_parts : bool
        Also return ``(nll, rewards, log_prob)``.

    Returns
    -------
    torch.Tensor, shape ()
    """
    logits, _, log_prob = model(batch.keys, batch.values, batch.query, batch.mask)
    nll = F.cross_entropy(logits, batch.target, reduction="none")
    if log_prob is None:
        return (nll.mean(), (nll, None, None)) if return_parts else nll.mean()
    rewards = -nll.detach()
    b = 0.0 if baseline is None else (baseline(rewards) if callable(baseline) else baseline)
    loss = nll.mean() + reinforce_loss(log_prob, rewards, b)
    return (loss, (nll, rewards, log_prob)) if return_parts else loss


@torch.no_grad()
def lookup_accuracy(model: LookupModel, data, device=None) -> float:
    """Accuracy on a :class:`~attnlib.data.lookup.ToyData` (hard mode: argmax position, no sampling)."""
    b = data.batch(device=device)
    was = model.training
    model.eval()
    logits, _, _ = model(b.keys, b.values, b.query, b.mask, sample=False)
    model.train(was)
    return float((logits.argmax(-1) == b.target).float().mean())


def attention_gradients(model: LookupModel, data, n_draws: int = 100, batch_size: int = 32,
                        baseline=None, seed: int = 0, device=None) -> torch.Tensor:
    """Gradient estimates of the attention parameters ``W``, one per random minibatch (and sample).

    The parameters do not move: each draw takes a fresh minibatch (and, in hard mode, fresh
    samples of the positions), computes :func:`lookup_loss` and records the gradient of
    ``model.attention.W.weight``.

    Parameters
    ----------
    model : LookupModel
        Its current ``mode`` decides the estimator.
    data : ToyData
    n_draws : int
    batch_size : int
    baseline : None, float or torch.Tensor
        A fixed baseline (no moving average, so the draws are independent).
    seed : int
        Seeds the minibatches and the samples.

    Returns
    -------
    torch.Tensor, shape (n_draws, P)
        ``P`` = number of attention parameters.
    """
    gen = torch.Generator().manual_seed(seed)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    param = model.attention.W.weight
    grads = []
    was = model.training
    model.train()
    try:
        for _ in range(n_draws):
            idx = torch.randint(len(data), (batch_size,), generator=gen)
            model.zero_grad()
            lookup_loss(model, data.batch(idx, device), baseline).backward()
            grads.append(param.grad.detach().flatten().cpu().clone())
    finally:
        model.train(was)
        model.zero_grad()
        torch.random.set_rng_state(state)
    return torch.stack(grads)


def gradient_variance(grads: torch.Tensor) -> dict:
    """Summaries of gradient estimates (n_draws, P): total variance, squared mean, their ratio.

    Parameters
    ----------
    grads : torch.Tensor, shape (n_draws, P)

    Returns
    -------
    dict
        ``variance`` = sum over parameters of the variance across draws (the trace of the
        covariance); ``mean_sq`` = squared norm of the mean gradient; ``relative`` =
        ``variance / mean_sq``.
    """
    g = grads.double()
    var = float(g.var(0, unbiased=True).sum())
    mean_sq = float(g.mean(0).pow(2).sum())
    return {"variance": var, "mean_sq": mean_sq, "relative": var / max(mean_sq, 1e-300)}
