"""Checkers for the chapter "Word embeddings": cosine similarities, the SGNS loss and its gradient.

In a notebook::

    from attnlib.exercises import word_embeddings as ex
    ex.check_cosine_matrix(my_cosine)   # my_cosine(A, B) -> (N, M)
    ex.check_sgns_loss(my_loss)         # my_loss(v_c, u_o, u_neg) -> (B,)
    ex.check_sgns_grad(my_grad)         # my_grad(v_c, u_o, u_neg) -> (B, d), d loss / d v_c
    ex.report()
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy.embeddings import cosine_similarity, sgns_gradients, sgns_loss

__all__ = ["check_cosine_matrix", "check_sgns_loss", "check_sgns_grad", "report", "reset"]


def _unit(X, axis=1):
    n = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.where(n == 0, 1.0, n)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------- cosine matrix

def _cosine_cases():
    rng = np.random.default_rng(4004)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    scaled = n(4, 6) * np.array([[0.1], [1.0], [10.0], [100.0]])
    zero = n(3, 5)
    zero[1] = 0.0
    return [Case((n(3, 4), n(5, 4)), "3 rows against 5 rows"),
            Case((n(4, 8), n(4, 8)), "4 rows against 4 rows"),
            Case((scaled, n(3, 6)), "rows of very different lengths"),
            Case((zero, n(4, 5)), "a zero row in A",
                 nonfinite="Row 1 of A is all zeros: its norm is 0 and 0/0 is NaN. Give a zero "
                           "vector similarity 0 with everything (divide by 1 where the norm is 0).")]


_COSINE_MISTAKES = (
    Mistake("transposed", "Your matrix is transposed: row i must belong to row i of A and column j "
            "to row j of B, i.e. shape (N, M). Compute A_unit @ B_unit.T.",
            lambda A, B: _unit(B) @ _unit(A).T),
    Mistake("dot_only", "These are plain dot products: divide each row of A and of B by its length "
            "(np.linalg.norm(..., axis=1, keepdims=True)) first.", lambda A, B: A @ B.T),
    Mistake("only_A", "You normalised the rows of A but not those of B.", lambda A, B: _unit(A) @ B.T),
    Mistake("only_B", "You normalised the rows of B but not those of A.", lambda A, B: A @ _unit(B).T),
    Mistake("norm_axis0", "You normalised along the wrong axis: each ROW (one vector) must have "
            "length 1, so take the norm over axis=1 (the features), not axis=0.",
            lambda A, B: _unit(A, 0) @ _unit(B, 0).T),
    Mistake("frobenius", "You divided each matrix by ONE number, its Frobenius norm "
            "(np.linalg.norm(A) with no axis: the length of all its entries together). Each ROW must "
            "get length 1 on its own: np.linalg.norm(A, axis=1, keepdims=True).",
            lambda A, B: (A / np.linalg.norm(A)) @ (B / np.linalg.norm(B)).T),
    Mistake("squared_norm", "You divided by the squared lengths; divide by the lengths "
            "(np.linalg.norm, or the square root of the sum of squares).",
            lambda A, B: (A / np.sum(A * A, 1, keepdims=True)) @ (B / np.sum(B * B, 1, keepdims=True)).T),
)

COSINE = Exercise(
    name="cosine matrix", call="fn(A, B)", arg_names=("A", "B"), out_axes=("N", "M"),
    dims=lambda A, B: {"N": A.shape[0], "M": B.shape[0], "d": A.shape[1]},
    reference=cosine_similarity, cases=_cosine_cases, mistakes=_COSINE_MISTAKES,
    hint="Divide every row of A and of B by its length, np.linalg.norm(X, axis=1, keepdims=True) "
         "(use 1 where the length is 0), then return A_unit @ B_unit.T.",
    checked="rows of very different lengths and a zero row: shapes and values match")


# ----------------------------------------------------------------------------- SGNS loss and gradient

def _sgns_cases():
    rng = np.random.default_rng(5005)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    big_v, big_u, big_n = n(3, 4), n(3, 4), n(3, 2, 4)
    big_v *= 400.0  # scores of a thousand or more: log(sigmoid(-1000)) must not be -inf
    return [Case((n(4, 3), n(4, 3), n(4, 2, 3)), "4 pairs, d=3, K=2 negatives"),
            Case((n(1, 5), n(1, 5), n(1, 5, 5)), "one pair, d=5, K=5"),
            Case((0.1 * n(6, 8), 0.1 * n(6, 8), 0.1 * n(6, 3, 8)), "6 pairs of small vectors, K=3"),
            Case((big_v, big_u, big_n), "large scores (about ±1000)",
                 nonfinite="The scores there are about ±1000: exp(1000) overflows, so sigmoid(-1000) "
                           "becomes 0 and log(0) = -inf. Use log sigmoid(x) = -np.logaddexp(0, -x).")]


def _loss_ref(v_c, u_o, u_neg):
    return sgns_loss(v_c, u_o, u_neg)


def _scores(v_c, u_o, u_neg):
    return np.sum(u_o * v_c, -1), np.einsum("bkd,bd->bk", u_neg, v_c)


def _naive_loss(sign_neg=-1.0, mean_k=False, no_neg=False):
    def fn(v_c, u_o, u_neg):
        pos, neg = _scores(v_c, u_o, u_neg)
        terms = np.log(_sig(sign_neg * neg))
        agg = terms.mean(-1) if mean_k else terms.sum(-1)
        return -np.log(_sig(pos)) - (0.0 if no_neg else agg)
    return fn


_LOSS_MISTAKES = (
    Mistake("neg_sign", "The negatives' term has the wrong sign inside the sigmoid: a negative word "
            "should have a LOW score, so its term is log sigmoid(-u_k . v_c), with a minus.",
            _naive_loss(sign_neg=1.0)),
    Mistake("no_negatives", "Your loss has only the positive term: add -sum_k log sigmoid(-u_k . v_c) "
            "over the K negatives.", _naive_loss(no_neg=True)),
    Mistake("mean_over_k", "You averaged over the K negatives; the loss SUMS their terms.",
            _naive_loss(mean_k=True)),
    Mistake("positive_sign", "Your loss has the wrong overall sign: it is MINUS the log-likelihood "
            "(a loss to minimise), -log sigmoid(s_o) - sum_k log sigmoid(-s_k).",
            lambda v, u, un: -_loss_ref(v, u, un)),
    Mistake("mean_over_batch", "You returned one number for the whole batch: return the loss of each "
            "pair, shape (B,) (no mean over the batch).",
            lambda v, u, un: np.asarray(_loss_ref(v, u, un).mean())),
)

LOSS = Exercise(
    name="SGNS loss", call="fn(v_c, u_o, u_neg)", arg_names=("v_c", "u_o", "u_neg"), out_axes=("B",),
    dims=lambda v, u, un: {"B": v.shape[0], "d": v.shape[1], "K": un.shape[1]},
    reference=_loss_ref, cases=_sgns_cases, mistakes=_LOSS_MISTAKES,
    hint="s_o = np.sum(u_o * v_c, axis=-1) (B,); s_k = np.einsum('bkd,bd->bk', u_neg, v_c) (B, K); "
         "log sigmoid(x) = -np.logaddexp(0, -x); loss = -logsig(s_o) - logsig(-s_k).sum(axis=-1).",
    checked="several batch sizes, K and scores of ±1000: shapes and values match")


def _grad_ref(v_c, u_o, u_neg):
    return sgns_gradients(v_c, u_o, u_neg)[1]


def _naive_grad(pos_coef, neg_coef, reduce_k="sum"):
    def fn(v_c, u_o, u_neg):
        pos, neg = _scores(v_c, u_o, u_neg)
        g_neg = neg_coef(neg)[:, :, None] * u_neg
        return pos_coef(pos)[:, None] * u_o + (g_neg.mean(1) if reduce_k == "mean" else g_neg.sum(1))
    return fn


_GRAD_MISTAKES = (
    Mistake("pos_sign", "The context word's coefficient is wrong: it is sigma(s_o) - 1 (negative: "
            "the gradient step pulls v_c TOWARDS u_o), not 1 - sigma(s_o).",
            _naive_grad(lambda s: 1 - _sig(s), _sig)),
    Mistake("pos_missing_minus_one", "The context word's coefficient is sigma(s_o) - 1, not sigma(s_o): "
            "differentiate -log sigma(s) = log(1 + e^-s) to get sigma(s) - 1.",
            _naive_grad(_sig, _sig)),
    Mistake("neg_sigmoid_of_minus", "The negatives' coefficient is sigma(s_k), not sigma(-s_k): "
            "d/dx of -log sigma(-x) is sigma(x).",
            _naive_grad(lambda s: _sig(s) - 1, lambda s: _sig(-s))),
    Mistake("neg_wrong_sign", "The negatives' term has the wrong sign: it is +sum_k sigma(s_k) u_k "
            "(the step pushes v_c AWAY from the negatives).",
            _naive_grad(lambda s: _sig(s) - 1, lambda s: -_sig(s))),
    Mistake("no_negatives", "Your gradient lacks the negatives' term sum_k sigma(s_k) u_k.",
            _naive_grad(lambda s: _sig(s) - 1, lambda s: 0 * s)),
    Mistake("mean_over_k", "You averaged the negatives' terms over the K negatives; the loss SUMS "
            "its K negative terms, so its gradient sums them too: + sum_k sigma(s_k) u_k (np.sum or "
            "einsum over k, not np.mean).",
            _naive_grad(lambda s: _sig(s) - 1, _sig, reduce_k="mean")),
    Mistake("grad_of_loss_sign", "Your gradient has the wrong overall sign: return d loss / d v_c "
            "(the step is then v_c -= lr * grad).", lambda v, u, un: -_grad_ref(v, u, un)),
    Mistake("grad_wrt_u_o", "This is the gradient with respect to u_o, (sigma(s_o) - 1) v_c; the "
            "exercise asks for the gradient with respect to the centre vector v_c.",
            lambda v, u, un: sgns_gradients(v, u, un)[2]),
)

GRAD = Exercise(
    name="SGNS gradient", call="fn(v_c, u_o, u_neg)", arg_names=("v_c", "u_o", "u_neg"),
    out_axes=("B", "d"),
    dims=lambda v, u, un: {"B": v.shape[0], "d": v.shape[1], "K": un.shape[1]},
    reference=_grad_ref, cases=_sgns_cases, mistakes=_GRAD_MISTAKES,
    hint="grad = (sigma(s_o) - 1)[:, None] * u_o + np.einsum('bk,bkd->bd', sigma(s_k), u_neg), "
         "with sigma(x) = 1 / (1 + np.exp(-x)).",
    checked="several batch sizes, K and scores of ±1000: shapes and values match")

_CHAPTER = Chapter("Word embeddings", [COSINE, LOSS, GRAD])


def check_cosine_matrix(fn) -> CheckResult:
    """Check ``fn(A, B) -> (N, M)``: cosine similarity of every row of A (N, d) with every row of B (M, d)."""
    return _CHAPTER.check(COSINE, fn)


def check_sgns_loss(fn) -> CheckResult:
    """Check ``fn(v_c, u_o, u_neg) -> (B,)``: the skip-gram negative-sampling loss of each pair.

    v_c (B, d) centre vectors, u_o (B, d) context vectors, u_neg (B, K, d) negatives' vectors.
    """
    return _CHAPTER.check(LOSS, fn)


def check_sgns_grad(fn) -> CheckResult:
    """Check ``fn(v_c, u_o, u_neg) -> (B, d)``: the gradient of each pair's loss with respect to v_c."""
    return _CHAPTER.check(GRAD, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
