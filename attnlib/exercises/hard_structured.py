"""Checkers for "Hard versus soft attention, and structured attention".

In a notebook::

    from attnlib.exercises import hard_structured as ex
    ex.check_reinforce_loss(my_reinforce_loss)   # my_reinforce_loss(log_probs, rewards, baseline) -> scalar
    ex.check_log_partition(my_log_partition)     # my_log_partition(scores, transitions) -> scalar
    ex.check_marginals(my_marginals)             # my_marginals(scores, transitions) -> (L,)
    ex.report()

The learner's functions receive **torch tensors** in float64 and may return a tensor or a float.

The third exercise is the CRF's attention weights, the marginals p(z_j = 1) of the binary chain by
forward-backward in log space. Its catalogue: the backward pass left out (filtered marginals
p(z_j = 1 | s_1..s_j)), the backward recursion summing over the transitions' wrong index, the
position's own unary counted twice, the transitions ignored (sigmoids), the marginals normalised
to sum to one, and p(z_j = 0) returned instead of p(z_j = 1).
"""
from __future__ import annotations

import numpy as np
import torch

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake, failed
from attnlib.exercises.numpy_to_torch import _tensor_fn

__all__ = ["check_reinforce_loss", "check_log_partition", "check_marginals", "report", "reset"]


# ----------------------------------------------------------------------------- exercise 1: REINFORCE

def _reinforce(log_probs, rewards, baseline):
    return np.asarray(-np.mean((rewards - baseline) * log_probs))


def _reinforce_cases():
    rng = np.random.default_rng(1201)
    out = []
    for n, b, label in [(5, 0.0, "5 samples, baseline 0"), (8, 1.5, "8 samples, baseline 1.5"),
                        (6, -0.7, "6 samples, negative baseline")]:
        out.append(Case((np.log(rng.uniform(0.05, 1, size=n)), rng.normal(size=n) + 1.0, b), label))
    lp = np.log(rng.uniform(0.05, 1, size=4))
    out.append(Case((lp, rng.normal(size=4), rng.normal(size=4)), "a baseline per sample (shape (4,))"))
    return out


REINFORCE = Exercise(
    name="reinforce_loss", call="fn(log_probs, rewards, baseline)",
    arg_names=("log_probs", "rewards", "baseline"), out_axes=(), dims=lambda *a: {},
    reference=_reinforce, cases=_reinforce_cases,
    mistakes=(
        Mistake("plus_sign", "Your loss has the wrong sign. The optimizer *minimises* the loss but we want "
                "to *raise* the expected reward, so the surrogate is minus (r - b) log p.",
                lambda lp, r, b: -_reinforce(lp, r, b)),
        Mistake("no_baseline", "You ignored the baseline: use the advantage r - b, not r.",
                lambda lp, r, b: _reinforce(lp, r, 0.0)),
        Mistake("plus_baseline", "You added the baseline; subtract it: the advantage is r - b.",
                lambda lp, r, b: _reinforce(lp, r, -np.asarray(b))),
        Mistake("sum", "You summed over the samples; average them (.mean()), so the loss does not grow "
                "with the batch size.", lambda lp, r, b: _reinforce(lp, r, b) * len(lp)),
        Mistake("probs", "You weighted the probabilities p, not the log-probabilities: the score function "
                "is the gradient of log p.", lambda lp, r, b: _reinforce(np.exp(lp), r, b)),
    ),
    hint="advantage = (rewards - baseline).detach(); return -(advantage * log_probs).mean()",
    checked="values with scalar and per-sample baselines, and no gradient into the rewards")


# ----------------------------------------------------------------------------- exercise 2: log Z

def _log_partition(scores, transitions):
    """Forward algorithm in log space, float64 NumPy (scores (L,), transitions (2, 2))."""
    alpha = np.array([0.0, scores[0]])
    for s in scores[1:]:
        m = alpha[:, None] + transitions
        top = m.max(0)
        alpha = top + np.log(np.exp(m - top).sum(0)) + np.array([0.0, s])
    top = alpha.max()
    return np.asarray(top + np.log(np.exp(alpha - top).sum()))


def _viterbi(scores, transitions):
    alpha = np.array([0.0, scores[0]])
    for s in scores[1:]:
        alpha = (alpha[:, None] + transitions).max(0) + np.array([0.0, s])
    return np.asarray(alpha.max())


def _no_first_unary(scores, transitions):
    s = np.array(scores, dtype=float)
    s[0] = 0.0
    return _log_partition(s, transitions)


def _partition_cases():
    rng = np.random.default_rng(1202)
    out = [Case((rng.normal(size=1), rng.normal(size=(2, 2))), "a chain of length 1")]
    for L in (3, 5, 8):
        out.append(Case((rng.normal(scale=2, size=L), rng.normal(size=(2, 2))), f"a chain of length {L}"))
    out.append(Case((np.array([3.0, -1.0, 2.0, 0.5]), np.array([[2.0, -3.0], [0.5, 1.0]])),
                    "asymmetric transitions (A[0, 1] != A[1, 0])"))
    out.append(Case((rng.normal(scale=800, size=6), rng.normal(scale=300, size=(2, 2))),
                    "scores of magnitude ~1000",
                    nonfinite="exp(1000) overflows: stay in log space and use torch.logsumexp, which "
                              "subtracts the maximum before exponentiating."))
    return out


PARTITION = Exercise(
    name="log_partition", call="fn(scores, transitions)",
    arg_names=("scores", "transitions"), out_axes=(), dims=lambda *a: {},
    reference=_log_partition, cases=_partition_cases,
    mistakes=(
        Mistake("max_not_logsumexp", "You took a max where the forward algorithm sums: that is the Viterbi "
                "score of the single best assignment, not log Z. Use torch.logsumexp over the previous state.",
                _viterbi),
        Mistake("transposed", "Your transitions are transposed: transitions[a, b] is the score of going from "
                "state a at position j-1 to state b at position j, so sum over the *first* index "
                "(alpha[:, None] + transitions, logsumexp over dim 0).",
                lambda s, A: _log_partition(s, A.T)),
        Mistake("no_first_unary", "You started from alpha = [0, 0]: the first position's unary (0 for z=0, "
                "scores[0] for z=1) is missing.", _no_first_unary),
        Mistake("no_transitions", "Your result ignores the transitions: they couple neighbouring positions "
                "and belong inside the recursion.",
                lambda s, A: _log_partition(s, np.zeros((2, 2)))),
    ),
    hint="alpha = torch.stack([zero, scores[0]]); for each next score s: "
         "alpha = torch.logsumexp(alpha[:, None] + transitions, dim=0) + torch.stack([zero, s]); "
         "finally return torch.logsumexp(alpha, dim=0).",
    checked="chains of length 1 to 8, asymmetric transitions and scores of magnitude 1000")

# ----------------------------------------------------------------------------- exercise 3: marginals

def _lse(x, axis=None):
    """log sum exp, max-subtracted (NumPy)."""
    top = np.max(x, axis=axis, keepdims=True)
    out = top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))
    return out.squeeze() if axis is None else np.squeeze(out, axis=axis)


def _unaries(scores):
    """u_j = (0, s_j): the score of z_j = 0 and of z_j = 1, shape (L, 2)."""
    return np.stack([np.zeros_like(scores), scores], axis=-1)


def _forward(scores, transitions):
    """alpha (L, 2): alpha_j(b) = u_j(b) + log sum_a exp(alpha_{j-1}(a) + A[a, b])."""
    u = _unaries(np.asarray(scores, dtype=float))
    alpha = [u[0]]
    for j in range(1, len(u)):
        alpha.append(u[j] + _lse(alpha[-1][:, None] + transitions, axis=0))
    return np.stack(alpha)


def _backward(scores, transitions):
    """beta (L, 2): beta_j(a) = log sum_b exp(A[a, b] + u_{j+1}(b) + beta_{j+1}(b)), beta_L = 0.

    Passed ``transitions.T``, it is the backward recursion that sums over the wrong index of A.
    """
    u = _unaries(np.asarray(scores, dtype=float))
    beta = [np.zeros(2)]
    for j in range(len(u) - 2, -1, -1):
        beta.insert(0, _lse(transitions + (u[j + 1] + beta[0])[None, :], axis=1))
    return np.stack(beta)


def _marginals(scores, transitions, backward_transitions=None):
    """p(z_j = 1) = exp(alpha_j(1) + beta_j(1) - log Z), shape (L,)."""
    A = np.asarray(transitions, dtype=float)
    alpha = _forward(scores, A)
    beta = _backward(scores, A if backward_transitions is None else backward_transitions)
    return np.exp(alpha[:, 1] + beta[:, 1] - _lse(alpha[-1]))


def _filtered(scores, transitions):
    alpha = _forward(scores, np.asarray(transitions, dtype=float))
    return np.exp(alpha[:, 1] - _lse(alpha, axis=1))


def _marginal_cases():
    rng = np.random.default_rng(1203)
    out = [Case((rng.normal(size=1), rng.normal(size=(2, 2))), "a chain of length 1")]
    for L in (3, 5, 8):
        out.append(Case((rng.normal(scale=2, size=L), rng.normal(scale=2, size=(2, 2))),
                        f"a chain of length {L}"))
    out.append(Case((np.array([1.5, -0.5, 2.0, -1.0, 0.5]), np.array([[1.0, -2.5], [0.5, 2.0]])),
                    "asymmetric transitions (A[0, 1] != A[1, 0])"))
    out.append(Case((rng.normal(scale=800, size=6), rng.normal(scale=300, size=(2, 2))),
                    "scores of magnitude ~1000",
                    nonfinite="exp(1000) overflows: keep alpha, beta and log Z in log space "
                              "(torch.logsumexp) and exponentiate only alpha + beta - log Z."))
    return out


MARGINALS = Exercise(
    name="marginals", call="fn(scores, transitions)",
    arg_names=("scores", "transitions"), out_axes=("L",), dims=lambda s, A: {"L": len(s)},
    reference=_marginals, cases=_marginal_cases,
    mistakes=(
        Mistake("no_backward", "You used the forward messages alone, exp(alpha_j(1)) / sum_z exp(alpha_j(z)): "
                "that is p(z_j = 1 | s_1, ..., s_j), which ignores everything to the right of j. The "
                "marginal needs the backward messages too: exp(alpha_j(1) + beta_j(1) - log Z).",
                _filtered),
        Mistake("backward_transposed", "Your backward recursion sums over the wrong index of the transitions. "
                "Going backwards, beta_j(a) = logsumexp over the NEXT state b of A[a, b] + u_{j+1}(b) + "
                "beta_{j+1}(b): a is the first index, so the logsumexp is over dim 1, not dim 0 as in the "
                "forward pass.",
                lambda s, A: _marginals(s, A, backward_transitions=np.asarray(A).T)),
        Mistake("unary_twice", "Position j's own score is counted twice: alpha_j already contains u_j, so "
                "beta_j must hold only what lies to the right, beta_j(a) = logsumexp_b(A[a, b] + u_{j+1}(b) "
                "+ beta_{j+1}(b)), with beta = 0 at the last position.",
                lambda s, A: _marginals(s, A) * np.exp(s)),
        Mistake("no_transitions", "Your weights are sigmoid(s_j): the transitions are ignored, as if A = 0 "
                "and every position decided alone. The marginals must come from the chain, with A in both "
                "recursions.",
                lambda s, A: 1.0 / (1.0 + np.exp(-s))),
        Mistake("normalised", "Your weights sum to one. The CRF's marginals do not: each p(z_j = 1) is a "
                "probability of its own, and their sum is the expected number of selected positions. "
                "Do not divide by the sum.",
                lambda s, A: (lambda p: p / p.sum())(_marginals(s, A))),
        Mistake("state_zero", "You returned p(z_j = 0), the probability that position j is NOT selected. "
                "The attention weight is p(z_j = 1): take state 1 of alpha_j + beta_j.",
                lambda s, A: 1.0 - _marginals(s, A)),
    ),
    hint="Forward: alpha_j = logsumexp(alpha_{j-1}[:, None] + A, dim=0) + u_j with u_j = (0, s_j). "
         "Backward, from beta = 0 at the last position: beta_j = logsumexp(A + (u_{j+1} + beta_{j+1})[None, :], "
         "dim=1). Then log Z = logsumexp(alpha_L) and p_j = exp(alpha_j[1] + beta_j[1] - log Z).",
    checked="chains of length 1 to 8, asymmetric transitions and scores of magnitude 1000")

_CHAPTER = Chapter("Hard versus soft attention, and structured attention", [REINFORCE, PARTITION, MARGINALS])


def _detaches(fn) -> bool:
    """True when ``fn`` treats the rewards and the baseline as constants (no gradient flows into them)."""
    lp = torch.log(torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)).requires_grad_()
    r = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    out = fn(lp, r, b)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return True
    grads = torch.autograd.grad(out, (r, b), allow_unused=True)
    return all(g is None or float(g.abs().max()) == 0.0 for g in grads)


def check_reinforce_loss(fn) -> CheckResult:
    """Check ``fn(log_probs (N,), rewards (N,), baseline) -> scalar``: the REINFORCE surrogate loss."""
    result = _CHAPTER.check(REINFORCE, _tensor_fn(fn))
    if result.passed:
        try:
            ok = _detaches(fn)
        except Exception:  # the values were right; a failure here is about autograd only
            ok = True
        if not ok:
            result = failed(REINFORCE, "Your values are right, but gradients flow into the rewards or the "
                            "baseline. They are constants of the estimator (and a learned baseline must "
                            "not be trained by this loss): detach the advantage.",
                            "advantage = (rewards - baseline).detach()")
            _CHAPTER.results[REINFORCE.name] = result.status
    return result


def check_log_partition(fn) -> CheckResult:
    """Check ``fn(scores (L,), transitions (2, 2)) -> scalar``: log Z of the binary chain."""
    return _CHAPTER.check(PARTITION, _tensor_fn(fn))


def check_marginals(fn) -> CheckResult:
    """Check ``fn(scores (L,), transitions (2, 2)) -> (L,)``: the marginals p(z_j = 1) of the binary chain."""
    return _CHAPTER.check(MARGINALS, _tensor_fn(fn))


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
