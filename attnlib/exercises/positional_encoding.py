"""Checkers for the chapter "Positional encoding": the sinusoidal table and RoPE.

In a notebook::

    from attnlib.exercises import positional_encoding as ex
    ex.check_sinusoidal(my_sinusoidal)   # my_sinusoidal(num_positions, d_model) -> (P, d)
    ex.check_rope(my_rope)               # my_rope(x) -> x rotated, (..., L, d)
    ex.report()
"""
from __future__ import annotations

import numpy as np

from attnlib.exercises.core import Case, Chapter, CheckResult, Exercise, Mistake
from attnlib.numpy.positional import rope, sinusoidal_positional_encoding

__all__ = ["check_sinusoidal", "check_rope", "report", "reset"]


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

_CHAPTER = Chapter("Positional encoding", [SINUSOIDAL, ROPE])


def check_sinusoidal(fn) -> CheckResult:
    """Check ``fn(num_positions, d_model) -> (num_positions, d_model)``, the sinusoidal encoding."""
    return _CHAPTER.check(SINUSOIDAL, fn)


def check_rope(fn) -> CheckResult:
    """Check ``fn(x) -> (..., L, d)``: RoPE at positions 0..L-1, pairs (2i, 2i+1), base 10000."""
    return _CHAPTER.check(ROPE, fn)


def report() -> None:
    """Print how many of this chapter's exercises passed in this session."""
    _CHAPTER.report()


def reset() -> None:
    """Forget the results recorded so far."""
    _CHAPTER.reset()
