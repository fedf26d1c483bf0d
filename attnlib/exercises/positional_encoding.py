"""Checkers for the chapter "Positional encoding": the sinusoidal table, RoPE and ALiBi's biases.

In a notebook::

    from attnlib.exercises import positional_encoding as ex
    ex.check_sinusoidal(my_sinusoidal)   # my_sinusoidal(num_positions, d_model) -> (P, d)
    ex.check_rope(my_rope)               # my_rope(x) -> x rotated, (..., L, d)
    ex.check_alibi_bias(my_alibi_bias)   # my_alibi_bias(num_heads, L) -> (num_heads, L, L)
    ex.report()

The ALiBi catalogue: the penalty added instead of subtracted, the offset i - j without its absolute
value (future keys get a bonus), the slopes started at 2^0 = 1, the slopes 1/2, 1/4, ... that are
right only for 8 heads, the slopes in reverse order, and the heads' axis last.
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy.positional import alibi_bias, rope, sinusoidal_positional_encoding

__all__ = ["check_sinusoidal", "check_rope", "check_alibi_bias", "report", "reset"]


# ----------------------------------------------------------------------------- sinusoidal

def _sin_cases():
    return [Case((4, 6), "4 positions, d_model = 6"),
            Case((10, 8), "10 positions, d_model = 8"),
            Case((1, 4), "a single position"),
            Case((50, 16), "50 positions, d_model = 16")]


def _variant(exponent="2i", swap=False, halves=False, start=0, inverse=False, all_sin=False):
    def fn(P, d):
        p = np.arange(start, start + P)[:, None]
        cols = np.arange(d)
        e = {"2i": cols - cols % 2, "j": cols, "i": cols // 2}[exponent]
        if halves:
            e = 2 * (cols % (d // 2))
        freq = 10000.0 ** (e / d) if inverse else 10000.0 ** (-e / d)
        a = p * freq
        if halves:
            return np.where(cols < d // 2, np.sin(a), np.cos(a))
        if all_sin:
            return np.sin(a)
        even = cols % 2 == 0
        return np.where(even != swap, np.sin(a), np.cos(a))
    return fn


_SIN_MISTAKES = (
    Mistake("sin_cos_swapped", "Sine and cosine are swapped: even columns 2i hold the SINE, odd "
            "columns 2i+1 the cosine.", _variant(swap=True)),
    Mistake("exponent_j", "Your odd columns have a slightly wrong frequency: columns 2i and 2i+1 "
            "share the exponent 2i/d_model. Using the column index j itself gives column 2i+1 the "
            "exponent (2i+1)/d_model.", _variant(exponent="j")),
    Mistake("exponent_i", "The exponent is 2i/d_model, not i/d_model (i numbers the column PAIRS): "
            "your frequencies fall off twice too slowly.", _variant(exponent="i")),
    Mistake("inverse_frequency", "You multiplied the position by 10000^(2i/d) instead of dividing: "
            "the angle is p / 10000^(2i/d_model), small for high columns.", _variant(inverse=True)),
    Mistake("halves", "You put all the sines in the first half of the columns and the cosines in "
            "the second (a layout some libraries use); here they interleave: sin in column 2i, cos "
            "in column 2i+1.", _variant(halves=True)),
    Mistake("positions_from_1", "Positions start at 0: the first row is sin(0) = 0, cos(0) = 1.",
            _variant(start=1)),
    Mistake("all_sine", "The odd columns 2i+1 hold the COSINE of the same angle.", _variant(all_sin=True)),
)

SINUSOIDAL = Exercise(
    name="sinusoidal encoding", call="fn(num_positions, d_model)",
    arg_names=("num_positions", "d_model"), out_axes=("num_positions", "d_model"),
    dims=lambda P, d: {"num_positions": P, "d_model": d},
    reference=sinusoidal_positional_encoding, cases=_sin_cases, mistakes=_SIN_MISTAKES,
    hint="p = np.arange(num_positions)[:, None]; two_i = np.arange(0, d_model, 2); "
         "angles = p / 10000 ** (two_i / d_model); then PE[:, 0::2] = sin(angles), "
         "PE[:, 1::2] = cos(angles).",
    checked="several sizes: shapes and values match")


# ----------------------------------------------------------------------------- RoPE

def _rope_cases():
    rng = np.random.default_rng(6006)
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    return [Case((n(4, 6),), "4 positions, d = 6"),
            Case((n(12, 8),), "12 positions, d = 8"),
            Case((n(2, 5, 4),), "batched (B=2), 5 positions, d = 4"),
            Case((n(2, 3, 7, 6),), "two batch axes (B=2, H=3), 7 positions, d = 6")]


def _rope_variant(sign=1.0, start=0, exponent="2i", halves=False):
    def fn(x):
        L, d = x.shape[-2], x.shape[-1]
        i = np.arange(d // 2)
        e = 2 * i if exponent == "2i" else i
        theta = 10000.0 ** (-e / d)
        a = sign * np.arange(start, start + L)[:, None] * theta
        c, s = np.cos(a), np.sin(a)
        if halves:
            x1, x2 = x[..., : d // 2], x[..., d // 2:]
            return np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)
        out = np.empty_like(x)
        out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
        out[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
        return out
    return fn


_ROPE_MISTAKES = (
    Mistake("clockwise", "You rotate the wrong way: x'_2i = x_2i cos - x_2i+1 sin and "
            "x'_2i+1 = x_2i sin + x_2i+1 cos (counter-clockwise by p * theta_i).", _rope_variant(sign=-1.0)),
    Mistake("halves", "You paired feature j with feature j + d/2 (the 'rotate half' layout of some "
            "libraries); here the pairs are neighbours: (x_0, x_1), (x_2, x_3), ...",
            _rope_variant(halves=True)),
    Mistake("positions_from_1", "Positions start at 0: the first row must come back unchanged.",
            _rope_variant(start=1)),
    Mistake("exponent_i", "theta_i = 10000^(-2i/d), with i numbering the pairs; you used "
            "10000^(-i/d).", _rope_variant(exponent="i")),
    Mistake("unchanged", "Your output equals the input: rotate each pair by its angle.", lambda x: x),
)

ROPE = Exercise(
    name="RoPE", call="fn(x)", arg_names=("x",), out_axes=("L", "d"),
    dims=lambda x: {"L": x.shape[-2], "d": x.shape[-1]},
    reference=rope, cases=_rope_cases, mistakes=_ROPE_MISTAKES,
    hint="angles = np.arange(L)[:, None] * 10000 ** (-np.arange(0, d, 2) / d), shape (L, d/2); "
         "with e, o = x[..., 0::2], x[..., 1::2]: out[..., 0::2] = e*cos - o*sin and "
         "out[..., 1::2] = e*sin + o*cos.",
    checked="batched and unbatched: shapes and values match")


# ----------------------------------------------------------------------------- ALiBi

def _alibi_cases():
    # 8 heads is the chapter's example (there the slopes are 1/2, 1/4, ...); 4 and 16 heads tell the
    # general 2^(-8h/n) from that special case; one position has bias 0 whatever the slopes.
    return [Case((8, 6), "8 heads, 6 positions (the chapter's example)"),
            Case((4, 5), "4 heads, 5 positions"),
            Case((16, 3), "16 heads, 3 positions"),
            Case((2, 4), "2 heads, 4 positions"),
            Case((2, 1), "2 heads, a single position")]


def _slopes(n, first=1, halving=False, reverse=False):
    """The slopes a learner might compute for n heads; the defaults give 2^(-8h/n), h = 1..n."""
    h = np.arange(first, first + n)
    m = 2.0 ** -h if halving else 2.0 ** (-8.0 * h / n)
    return m[::-1] if reverse else m


def _alibi_variant(sign=-1.0, absolute=True, heads_last=False, **slopes):
    def fn(n, L):
        offset = np.arange(L)[:, None] - np.arange(L)[None, :]  # i - j: query i, key j
        distance = np.abs(offset) if absolute else offset
        bias = sign * _slopes(n, **slopes)[:, None, None] * distance
        return np.moveaxis(bias, 0, -1) if heads_last else bias
    return fn


_ALIBI_MISTAKES = (
    Mistake("positive", "Your biases are positive: ALiBi SUBTRACTS the penalty, -m_h |i - j|, so that "
            "distant keys lose score. With +m_h |i - j| each query prefers the keys farthest away.",
            _alibi_variant(sign=1.0)),
    Mistake("no_absolute_value", "Your bias is -m_h (i - j) without the absolute value: keys after the "
            "query (j > i) get a positive bonus that grows with distance. The bias is -m_h |i - j|, "
            "the same penalty on both sides (a causal model only uses j <= i, where the two agree).",
            _alibi_variant(absolute=False)),
    Mistake("first_slope_one", "Your first head's slope is 1 = 2^0: the slopes are 2^(-8h/n) for "
            "h = 1, ..., n, so the first is 2^(-8/n) and the last exactly 2^-8. Start h at 1, not 0.",
            _alibi_variant(first=0)),
    Mistake("halving_slopes", "Your slopes are 1/2, 1/4, 1/8, ...: that is the sequence for 8 heads only. "
            "For n heads the slopes are 2^(-8h/n), h = 1, ..., n: they always end at 2^-8, so 4 heads "
            "get 1/4, 1/16, 1/64, 1/256.", _alibi_variant(halving=True)),
    Mistake("reversed_slopes", "Your slopes are in reverse order: head 0 must be the steepest, "
            "2^(-8/n), and the last head the gentlest, 2^-8.", _alibi_variant(reverse=True)),
    Mistake("heads_last", "Your heads are on the last axis, (L, L, num_heads). The bias is "
            "(num_heads, L, L), one (L, L) matrix per head, so that it adds to scores of shape "
            "(..., num_heads, L_q, L_k).", _alibi_variant(heads_last=True)),
)

ALIBI = Exercise(
    name="ALiBi bias", call="fn(num_heads, L)", arg_names=("num_heads", "L"),
    out_axes=("num_heads", "L_q", "L_k"), dims=lambda n, L: {"num_heads": n, "L_q": L, "L_k": L},
    reference=lambda n, L: alibi_bias(n, L), cases=_alibi_cases, mistakes=_ALIBI_MISTAKES,
    hint="slopes = 2.0 ** (-8 * np.arange(1, num_heads + 1) / num_heads), shape (num_heads,); "
         "distance = np.abs(np.arange(L)[:, None] - np.arange(L)[None, :]), shape (L, L); "
         "return -slopes[:, None, None] * distance.",
    checked="2 to 16 heads, and a single position: shapes and values match")

_CHAPTER = Chapter("Positional encoding", [SINUSOIDAL, ROPE, ALIBI])


def check_sinusoidal(fn) -> CheckResult:
    """Check ``fn(num_positions, d_model) -> (num_positions, d_model)``, the sinusoidal encoding."""
    return _CHAPTER.check(SINUSOIDAL, fn)


def check_rope(fn) -> CheckResult:
    """Check ``fn(x) -> (..., L, d)``: RoPE at positions 0..L-1, pairs (2i, 2i+1), base 10000."""
    return _CHAPTER.check(ROPE, fn)


def check_alibi_bias(fn) -> CheckResult:
    """Check ``fn(num_heads, L) -> (num_heads, L, L)``: ALiBi's biases ``-m_h |i - j|``.

    ``num_heads`` is a power of two; the slopes are ``m_h = 2^(-8h / num_heads)``, h = 1..num_heads.
    """
    return _CHAPTER.check(ALIBI, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
