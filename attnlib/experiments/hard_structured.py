"""Chapter 12's experiments: the lookup task (hard vs soft attention, REINFORCE) and the
bracketed-segment task (CRF vs softmax vs sigmoid attention), their models and metrics.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnlib.checks import check_positive_count, check_real, check_torch_bool_mask, check_torch_tensor
from attnlib.torch import (
    CRFAttention,
    HardAttention,
    MultiplicativeAttention,
    attention_context,
    masked_softmax,
    reinforce_loss,
)

__all__ = ["LookupModel", "lookup_loss", "lookup_accuracy", "attention_gradients",
           "gradient_variance", "SegmentModel", "segment_loss", "segment_accuracy",
           "segment_selection", "interior_selection", "majority_class_accuracy", "train_lookup_models",
           "train_segment_models", "estimator_variances", "segment_metrics"]


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
        for name, n in (("n_keys", n_keys), ("n_values", n_values), ("dim", dim)):
            check_positive_count(n, name)
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
    n_draws, batch_size = check_positive_count(n_draws, "n_draws"), check_positive_count(batch_size, "batch_size")
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
    check_torch_tensor(grads, "grads", floating=True)
    if grads.dim() != 2 or grads.shape[0] < 2:
        raise ValueError(f"grads must be (n_draws, P) with n_draws >= 2 (a variance needs two draws), got shape "
                         f"{tuple(grads.shape)}")
    g = grads.double()
    var = float(g.var(0, unbiased=True).sum())
    mean_sq = float(g.mean(0).pow(2).sum())
    return {"variance": var, "mean_sq": mean_sq, "relative": var / max(mean_sq, 1e-300)}


class SegmentModel(nn.Module):
    """Classify a token sequence by attention pooling: embeddings, one learned query, attention, MLP.

    The keys are the token embeddings alone (no recurrent encoder), so the attention layer is the
    only part that can look at *where* a token is.

    Parameters
    ----------
    vocab_size, n_classes : int
    dim : int
        Embedding and hidden size.
    attention : str
        ``"softmax"`` (normalised, one distribution), ``"sigmoid"`` (independent
        :math:`\\sigma(s_j)`, unnormalised) or ``"crf"`` (linear-chain CRF marginals, unnormalised).
    """

    def __init__(self, vocab_size: int, n_classes: int, dim: int = 32, attention: str = "crf"):
        super().__init__()
        if attention not in ("softmax", "sigmoid", "crf"):
            raise ValueError(f"attention must be 'softmax', 'sigmoid' or 'crf', got {attention!r}")
        for name, n in (("vocab_size", vocab_size), ("n_classes", n_classes), ("dim", dim)):
            check_positive_count(n, name)
        self.kind = attention
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.query = nn.Parameter(torch.randn(dim) / dim ** 0.5)
        if attention == "softmax":
            self.attention = MultiplicativeAttention(dim, dim, score="general")
        else:
            self.attention = CRFAttention(dim, dim, pairwise=attention == "crf")
        self.out = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, n_classes))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor):
        """tokens (B, L), mask (B, L) -> (logits (B, n_classes), weights (B, L))."""
        keys = self.embed(tokens)
        query = self.query.expand(len(tokens), -1)
        context, weights = self.attention(query, keys, mask)
        return self.out(context), weights


def segment_loss(model: SegmentModel, batch) -> torch.Tensor:
    """Cross-entropy of ``model(batch.tokens, batch.mask)`` against ``batch.target`` (a loss_fn for train)."""
    logits, _ = model(batch.tokens, batch.mask)
    return F.cross_entropy(logits, batch.target)


@torch.no_grad()
def segment_accuracy(model: SegmentModel, data, device=None) -> float:
    """Fraction of examples of a :class:`~attnlib.data.lookup.ToyData` whose class is predicted right."""
    b = data.batch(device=device)
    was = model.training
    model.eval()
    logits, _ = model(b.tokens, b.mask)
    model.train(was)
    return float((logits.argmax(-1) == b.target).float().mean())


def segment_selection(weights: torch.Tensor, span: torch.Tensor, mask: torch.Tensor,
                      threshold: float = 0.5) -> dict:
    """How well thresholded attention weights pick out the true segment.

    Parameters
    ----------
    weights : torch.Tensor, shape (B, L)
    span : torch.BoolTensor, shape (B, L)
        True on the true segment.
    mask : torch.BoolTensor, shape (B, L)
    threshold : float
        A position counts as selected when its weight exceeds this.

    Returns
    -------
    dict
        ``one_run``: fraction of rows whose selected positions form exactly one contiguous run;
        ``iou``: mean intersection-over-union of selected positions and the span;
        ``mass_inside``: fraction of the total weight that falls inside the spans;
        ``selected``: mean number of selected positions per row.
    """
    check_real(threshold, "threshold")
    for name, m in (("span", span), ("mask", mask)):
        check_torch_bool_mask(m, name, weights.device)
        if m.shape != weights.shape:
            raise ValueError(f"{name} must have the shape of weights {tuple(weights.shape)}, got {tuple(m.shape)}")
    sel = (weights > threshold) & mask
    starts = sel[:, :1].long().squeeze(1) + (sel[:, 1:] & ~sel[:, :-1]).long().sum(1)
    inter = (sel & span).sum(1).float()
    union = (sel | span).sum(1).float().clamp_min(1)
    return {"one_run": float((starts == 1).float().mean()), "iou": float((inter / union).mean()),
            "mass_inside": float((weights * span).sum() / weights.sum().clamp_min(1e-12)),
            "selected": float(sel.sum(1).float().mean())}


def interior_selection(weights: torch.Tensor, tokens: torch.Tensor, span: torch.Tensor, mask: torch.Tensor,
                       threshold: float = 0.5) -> dict:
    """Selection measured on the digits only: inside the brackets against outside them.

    The brackets are identified by their token alone, so a position-blind layer can find them; a
    digit inside the brackets looks exactly like one outside. These numbers leave the brackets out.

    Parameters
    ----------
    weights : torch.Tensor, shape (B, L)
    tokens : torch.LongTensor, shape (B, L)
        Token ids of :func:`attnlib.data.lookup.segment_data` (digits are ids ``>= 3``).
    span, mask : torch.BoolTensor, shape (B, L)
        The true segment (brackets included) and the real tokens.
    threshold : float

    Returns
    -------
    dict
        ``mass_inside``: fraction of the weight on digits that falls on the digits inside;
        ``chance``: the fraction of digits that are inside (what equal weights on every digit get);
        ``weight_inside`` / ``weight_outside``: mean weight of a digit inside / outside;
        ``iou``: mean IoU of the selected digits (weight > threshold) with the digits inside, over
        the rows that have a digit inside.
    """
    from attnlib.data.lookup import SEGMENT_DIGIT0

    check_real(threshold, "threshold")
    check_torch_tensor(tokens, "tokens")
    for name, m in (("span", span), ("mask", mask)):
        check_torch_bool_mask(m, name, weights.device)
    for name, m in (("tokens", tokens), ("span", span), ("mask", mask)):
        if m.shape != weights.shape:
            raise ValueError(f"{name} must have the shape of weights {tuple(weights.shape)}, got {tuple(m.shape)}")
    digit = mask & (tokens >= SEGMENT_DIGIT0)
    inside, outside = digit & span, digit & ~span
    w = weights.float()
    sel = (w > threshold) & digit
    has = inside.any(1)
    inter = (sel & inside).sum(1).float()
    union = (sel | inside).sum(1).float().clamp_min(1)
    return {"mass_inside": float((w * inside).sum() / (w * digit).sum().clamp_min(1e-12)),
            "chance": float(inside.sum() / digit.sum().clamp_min(1)),
            "weight_inside": float(w[inside].mean()) if inside.any() else float("nan"),
            "weight_outside": float(w[outside].mean()) if outside.any() else float("nan"),
            "iou": float((inter / union)[has].mean()) if has.any() else float("nan")}


def majority_class_accuracy(train_targets: torch.Tensor, test_targets: torch.Tensor) -> float:
    """Accuracy on ``test_targets`` of always answering the most common class of ``train_targets``.

    Parameters
    ----------
    train_targets, test_targets : torch.LongTensor, shape (N,) and (M,)

    Returns
    -------
    float
    """
    for name, t in (("train_targets", train_targets), ("test_targets", test_targets)):
        check_torch_tensor(t, name)
        if t.dim() != 1 or not len(t) or t.dtype.is_floating_point:
            raise ValueError(f"{name} must be a non-empty 1-D tensor of class ids, got shape "
                             f"{tuple(t.shape)} and dtype {t.dtype}")
    majority = int(torch.bincount(train_targets.cpu()).argmax())
    return float((test_targets.cpu() == majority).float().mean())


def train_lookup_models(vocab_size: int, n_classes: int, train_data, test_data, seed: int = 0,
                        steps: int = 200, device=None, progress: bool = True) -> tuple:
    """The chapter's three lookup models (soft, hard without and with a baseline), one seed.

    Each is built after ``attnlib.seed(seed)`` (``LookupModel(dim=32)``) and trained with Adam (1e-2)
    on ``train_data.batch_stream(64, seed=seed)`` for ``steps`` steps, with the test accuracy every
    50 steps; the baseline is a fresh ``MovingAverageBaseline(0.9)``.

    Returns
    -------
    histories : dict of str to attnlib.torch.History
    models : dict of str to LookupModel
    """
    import attnlib
    from attnlib.torch import MovingAverageBaseline, train

    steps = check_positive_count(steps, "steps")
    histories, models = {}, {}
    for name, mode, baseline in [("soft", "soft", None), ("hard, no baseline", "hard", None),
                                 ("hard + baseline", "hard", MovingAverageBaseline(0.9))]:
        attnlib.seed(seed)
        model = LookupModel(vocab_size, n_classes, dim=32, mode=mode).to(device)
        histories[name] = train(model, train_data.batch_stream(64, seed=seed, device=device),
                                lambda m, b, baseline=baseline: lookup_loss(m, b, baseline),
                                torch.optim.Adam(model.parameters(), 1e-2), steps=steps,
                                eval_fn=lambda m: {"accuracy": lookup_accuracy(m, test_data, device)},
                                eval_every=50, desc=name if seed == 0 else f"{name}, seed {seed}",
                                progress=progress)
        models[name] = model
    return histories, models


def train_segment_models(vocab_size: int, n_classes: int, train_data, test_data, seed: int = 0,
                         steps: int = 450, device=None, progress: bool = True) -> tuple:
    """The chapter's three segment models (softmax, sigmoid, CRF attention), one seed.

    Each is built after ``attnlib.seed(seed)`` (``SegmentModel(dim=32)``) and trained with Adam
    (2e-2) on ``train_data.batch_stream(128, seed=seed)`` for ``steps`` steps, with the test accuracy
    every 150 steps. The models are returned in eval mode.

    Returns
    -------
    histories : dict of str to attnlib.torch.History
    models : dict of str to SegmentModel
    """
    import attnlib
    from attnlib.torch import train

    steps = check_positive_count(steps, "steps")
    histories, models = {}, {}
    for kind in ["softmax", "sigmoid", "crf"]:
        attnlib.seed(seed)
        model = SegmentModel(vocab_size, n_classes, dim=32, attention=kind).to(device)
        histories[kind] = train(model, train_data.batch_stream(128, seed=seed, device=device), segment_loss,
                                torch.optim.Adam(model.parameters(), 2e-2), steps=steps,
                                eval_fn=lambda m: {"accuracy": segment_accuracy(m, test_data, device)},
                                eval_every=150, desc=kind if seed == 0 else f"{kind}, seed {seed}",
                                progress=progress)
        models[kind] = model.eval()
    return histories, models



def estimator_variances(vocab_size: int, n_classes: int, data, seed: int = 0, n_draws: int = 100,
                        batch_size: int = 32, device=None) -> tuple:
    """Total variance of the three gradient estimators of ``W`` at one seed's initial weights.

    A ``LookupModel(dim=32, mode="hard")`` is built after ``attnlib.seed(seed)``; the mean reward
    on all of ``data`` at these weights is the fixed baseline; then :func:`attention_gradients`
    (draws seeded with ``seed + 1``) for soft attention, hard without and hard with that baseline,
    summarised by :func:`gradient_variance`.

    Returns
    -------
    variances : dict of str to dict
        ``"soft"``, ``"hard, no baseline"``, ``"hard + baseline"`` -> :func:`gradient_variance`.
    mean_reward : float
        The baseline: the mean of :math:`r = \\log p(y \\mid h_z)` at these weights.
    """
    import attnlib

    attnlib.seed(seed)
    probe = LookupModel(vocab_size, n_classes, dim=32, mode="hard").to(device)
    with torch.no_grad():
        _, (_, rewards, _) = lookup_loss(probe, data.batch(device=device), return_parts=True)
    mean_reward = float(rewards.mean())
    variances = {}
    for name, mode, b in [("soft", "soft", None), ("hard, no baseline", "hard", None),
                          ("hard + baseline", "hard", mean_reward)]:
        probe.mode = mode
        g = attention_gradients(probe, data, n_draws=n_draws, batch_size=batch_size, baseline=b,
                                seed=seed + 1, device=device)
        variances[name] = gradient_variance(g)
    return variances, mean_reward


@torch.no_grad()
def segment_metrics(model: SegmentModel, data, device=None, threshold: float = 0.5) -> dict:
    """Accuracy and selection of a trained segment model on all of ``data``, as one flat dict.

    Returns
    -------
    dict
        ``accuracy``; ``span <key>`` for each key of :func:`segment_selection` (the span with its
        brackets) and ``interior <key>`` for each key of :func:`interior_selection` (digits only).
    """
    b = data.batch(device=device)
    was = model.training
    model.eval()
    logits, weights = model(b.tokens, b.mask)
    model.train(was)
    out = {"accuracy": float((logits.argmax(-1) == b.target).float().mean())}
    out.update({f"span {k}": v for k, v in segment_selection(weights, b.span, b.mask, threshold).items()})
    out.update({f"interior {k}": v for k, v in
                interior_selection(weights, b.tokens, b.span, b.mask, threshold).items()})
    return out
