r"""Chapter 16's experiments: do MiniLM's heads resolve pronouns, and what do its layers add to a probe?

**Winograd-style minimal pairs.** A pair is two sentences that differ in one word, and that word
flips which of two nouns the (same) pronoun refers to (Levesque et al., 2012):

- *The trophy did not fit in the suitcase because it was too* **big** (*it* = trophy);
- *The trophy did not fit in the suitcase because it was too* **small** (*it* = suitcase).

For every head we ask, in each sentence, whether the pronoun's attention weight on the right
noun exceeds its weight on the wrong one. A head blind to the flipped word attends alike in both
sentences of a pair, so it is right in exactly one of them: **chance is 50 % by construction**,
whatever the head's taste for subjects, first nouns or animate nouns. Heads are chosen on one
part of the pairs (the selection set) and reported on the others (held out), with a binomial
standard error and an exact sign test over the pairs.

**What the layers add to a probe.** The probe of :mod:`attnlib.pretrained.probe` (a linear
classifier on frozen, mean-pooled, unit-length features; test words never seen in training) is
trained on the output of every layer, and on the word-embedding table alone (no attention, no
position), over several random splits of the words. :class:`BatchedProbe` trains all those probes
at once as one model: Adam updates every parameter from its own gradient only, so one run of
``P`` stacked probes on the summed losses is ``P`` independent runs.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from attnlib.checks import (
    check_generator,
    check_positive_count,
    check_real,
    check_torch_tensor,
)
from attnlib.shapes import check_count

__all__ = ["WINOGRAD_PAIRS", "winograd_sentences", "winograd_weights", "referent_correct", "split_pairs",
           "head_accuracy", "select_heads", "sign_test", "paired_permutation_test", "accuracy_spread", "winograd_report", "repeated_selection",
           "probe_sentences", "layer_features", "word_splits", "BatchedProbe", "probe_by_layer", "head_patterns",
           "overlap_similarity"]

# (sentence with a slot, (word a, word b), pronoun, (noun 0, noun 1), (referent with a, referent with b)).
# Written for this course. Pronoun and nouns are one WordPiece token each and occur once per sentence.
WINOGRAD_PAIRS = (
    ("The trophy did not fit in the suitcase because it was too {}.", ("big", "small"), "it", ("trophy", "suitcase"), (0, 1)),
    ("The table would not go through the door because it was too {}.", ("wide", "narrow"), "it", ("table", "door"), (0, 1)),
    ("The bottle did not fit in the box because it was too {}.", ("large", "small"), "it", ("bottle", "box"), (0, 1)),
    ("The laptop did not fit in the bag because it was too {}.", ("big", "small"), "it", ("laptop", "bag"), (0, 1)),
    ("The cake did not fit in the box because it was too {}.", ("tall", "shallow"), "it", ("cake", "box"), (0, 1)),
    ("The pot did not fit on the stove because it was too {}.", ("wide", "small"), "it", ("pot", "stove"), (0, 1)),
    ("The phone did not fit in the pocket because it was too {}.", ("big", "tight"), "it", ("phone", "pocket"), (0, 1)),
    ("The blanket did not cover the bed because it was too {}.", ("short", "long"), "it", ("blanket", "bed"), (0, 1)),
    ("The ladder did not reach the roof because it was too {}.", ("short", "high"), "it", ("ladder", "roof"), (0, 1)),
    ("The rope could not hold the piano because it was too {}.", ("thin", "heavy"), "it", ("rope", "piano"), (0, 1)),
    ("The bridge could not carry the truck because it was too {}.", ("weak", "heavy"), "it", ("bridge", "truck"), (0, 1)),
    ("The shelf could not hold the vase because it was too {}.", ("narrow", "wide"), "it", ("shelf", "vase"), (0, 1)),
    ("The lamp could not light the room because it was too {}.", ("dim", "large"), "it", ("lamp", "room"), (0, 1)),
    ("The saw could not cut the log because it was too {}.", ("blunt", "thick"), "it", ("saw", "log"), (0, 1)),
    ("The engine could not pull the train because it was too {}.", ("weak", "long"), "it", ("engine", "train"), (0, 1)),
    ("The bird could not crack the seed because it was too {}.", ("weak", "hard"), "it", ("bird", "seed"), (0, 1)),
    ("The car overtook the truck because it was {}.", ("faster", "slower"), "it", ("car", "truck"), (0, 1)),
    ("The truck towed the car because it was {}.", ("powerful", "broken"), "it", ("truck", "car"), (0, 1)),
    ("The hammer broke the glass because it was {}.", ("heavy", "fragile"), "it", ("hammer", "glass"), (0, 1)),
    ("The stone hit the vase and it {}.", ("bounced", "shattered"), "it", ("stone", "vase"), (0, 1)),
    ("The boat hit the rock because it was {}.", ("fast", "hidden"), "it", ("boat", "rock"), (0, 1)),
    ("The fish ate the worm because it was {}.", ("hungry", "tasty"), "it", ("fish", "worm"), (0, 1)),
    ("The mouse ran from the cat because it was {}.", ("scared", "hungry"), "it", ("mouse", "cat"), (0, 1)),
    ("The wolf caught the deer because it was {}.", ("fast", "slow"), "it", ("wolf", "deer"), (0, 1)),
    ("The turtle beat the rabbit because it was {}.", ("patient", "lazy"), "it", ("turtle", "rabbit"), (0, 1)),
    ("The laptop was slower than the phone because it was {}.", ("older", "newer"), "it", ("laptop", "phone"), (0, 1)),
    ("The knife could not cut the bread because it was {}.", ("blunt", "frozen"), "it", ("knife", "bread"), (0, 1)),
    ("The mug cracked the tile because it was {}.", ("heavy", "brittle"), "it", ("mug", "tile"), (0, 1)),
    ("The man could not lift his son because he was so {}.", ("weak", "heavy"), "he", ("man", "son"), (0, 1)),
    ("Paul tried to call George, but he was not {}.", ("successful", "available"), "he", ("paul", "george"), (0, 1)),
    ("Tom beat Bill at chess because he was {}.", ("stronger", "weaker"), "he", ("tom", "bill"), (0, 1)),
    ("Sam lent Tim money because he was {}.", ("rich", "poor"), "he", ("sam", "tim"), (0, 1)),
    ("John hired Mark because he was {}.", ("busy", "qualified"), "he", ("john", "mark"), (0, 1)),
    ("The coach shouted at the player because he was {}.", ("angry", "lazy"), "he", ("coach", "player"), (0, 1)),
    ("The king pardoned the thief because he was {}.", ("merciful", "innocent"), "he", ("king", "thief"), (0, 1)),
    ("The guard caught the thief because he was {}.", ("alert", "slow"), "he", ("guard", "thief"), (0, 1)),
    ("The customer tipped the waiter because he was {}.", ("generous", "helpful"), "he", ("customer", "waiter"), (0, 1)),
    ("The student asked the professor because he was {}.", ("confused", "knowledgeable"), "he", ("student", "professor"), (0, 1)),
    ("Anna thanked Maria because she was {}.", ("grateful", "helpful"), "she", ("anna", "maria"), (0, 1)),
    ("Mary gave Susan her book because she had {} hers.", ("finished", "forgotten"), "she", ("mary", "susan"), (0, 1)),
    ("Lucy visited Emma because she was {}.", ("worried", "sick"), "she", ("lucy", "emma"), (0, 1)),
    ("The teacher praised the student because she was {}.", ("pleased", "diligent"), "she", ("teacher", "student"), (0, 1)),
    ("The nurse comforted the child because she was {}.", ("kind", "crying"), "she", ("nurse", "child"), (0, 1)),
    ("The mother scolded the daughter because she was {}.", ("angry", "rude"), "she", ("mother", "daughter"), (0, 1)),
    ("The pilot reassured the passenger because she was {}.", ("calm", "nervous"), "she", ("pilot", "passenger"), (0, 1)),
    ("The police refused the protesters a permit because they {} violence.", ("feared", "advocated"), "they", ("police", "protesters"), (0, 1)),
    ("The parents punished the children because they were {}.", ("strict", "naughty"), "they", ("parents", "children"), (0, 1)),
    ("The hosts welcomed the guests because they were {}.", ("friendly", "tired"), "they", ("hosts", "guests"), (0, 1)),
)


# ----------------------------------------------------------------------------- Winograd pairs

def _check_model(model) -> None:
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise TypeError(f"model must be an encoder such as attnlib.pretrained.BertEncoder, got "
                        f"{type(model).__name__}")


def _check_pairs(pairs) -> list:
    if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)) or not pairs:
        raise TypeError(f"pairs must be a non-empty list of (template, (word_a, word_b), pronoun, "
                        f"(noun_0, noun_1), (referent_a, referent_b)) tuples, like WINOGRAD_PAIRS, got "
                        f"{type(pairs).__name__}")
    for i, p in enumerate(pairs):
        ok = (isinstance(p, (list, tuple)) and len(p) == 5 and isinstance(p[0], str) and "{}" in p[0]
              and isinstance(p[2], str) and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in (p[1], p[3], p[4]))
              and all(isinstance(w, str) for w in (*p[1], *p[3])) and all(r in (0, 1) for r in p[4]))
        if not ok:
            raise ValueError(f"pairs[{i}] must be (template with '{{}}', (word_a, word_b), pronoun, (noun_0, noun_1), "
                             f"(referent_a, referent_b)) with referents 0 or 1, got {p!r}")
    return list(pairs)


def winograd_sentences(pairs: Sequence[tuple] = WINOGRAD_PAIRS) -> list:
    """The two sentences of every pair, with their pronoun, candidates and referent.

    Parameters
    ----------
    pairs : sequence of tuple
        As :data:`WINOGRAD_PAIRS`.

    Returns
    -------
    list of list of dict
        ``out[i][j]`` for pair i and its word j (0 or 1): ``"sentence"``, ``"word"``, ``"pronoun"``,
        ``"candidates"`` (the two nouns) and ``"referent"`` (0 or 1, index into the candidates).
    """
    out = []
    for template, words, pronoun, nouns, refs in _check_pairs(pairs):
        out.append([{"sentence": template.format(w), "word": w, "pronoun": pronoun, "candidates": tuple(nouns),
                     "referent": int(r)} for w, r in zip(words, refs)])
    return out


def winograd_weights(model, tokenizer, pairs: Sequence[tuple] = WINOGRAD_PAIRS, batch_size: int = 32) -> dict:
    """The pronoun's attention to its two candidate nouns, in every head, for both sentences of each pair.

    The sentences run in padded batches; padded keys get zero weight, so every weight is the
    one :func:`attnlib.pretrained.pronoun_attention` reads from the sentence alone (up to float
    rounding).

    Parameters
    ----------
    model : attnlib.pretrained.BertEncoder
    tokenizer : attnlib.pretrained.WordPieceTokenizer
    pairs : sequence of tuple
        As :data:`WINOGRAD_PAIRS`; the pronoun and the nouns must be one token each.
    batch_size : int

    Returns
    -------
    dict
        ``"weights"``: torch.Tensor (P, 2, num_layers, H, 2), the weight from the pronoun to noun 0
        and noun 1; ``"referents"``: torch.LongTensor (P, 2); ``"sentences"``: as
        :func:`winograd_sentences`.

    Raises
    ------
    ValueError
        When a pronoun or a noun is not exactly one token of its sentence.
    """
    sentences = winograd_sentences(pairs)
    batch_size = check_positive_count(batch_size, "batch_size")
    _check_model(model)
    flat = [s for pair in sentences for s in pair]
    dev = next(model.parameters()).device
    rows = []
    for start in range(0, len(flat), batch_size):
        chunk = flat[start:start + batch_size]
        batch = tokenizer([s["sentence"] for s in chunk], device=dev)
        with torch.inference_mode():
            att = model(batch["input_ids"], batch["attention_mask"], output_attentions=True).attentions
        A = torch.stack(att, 1).float().cpu()  # (B, layers, H, L, L)
        for b, s in enumerate(chunk):
            tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][b])
            for w in (s["pronoun"], *s["candidates"]):
                if tokens.count(w) != 1:
                    raise ValueError(f"{w!r} must be exactly one token of {s['sentence']!r}, whose tokens are "
                                     f"{[t for t in tokens if t != '[PAD]']}")
            q, keys = tokens.index(s["pronoun"]), [tokens.index(c) for c in s["candidates"]]
            rows.append(A[b][:, :, q][:, :, keys])  # (layers, H, 2)
    weights = torch.stack(rows).reshape(len(sentences), 2, *rows[0].shape)
    referents = torch.tensor([[s["referent"] for s in pair] for pair in sentences])
    return {"weights": weights, "referents": referents, "sentences": sentences}


def _check_weights(weights, referents) -> None:
    check_torch_tensor(weights, "weights", floating=True)
    check_torch_tensor(referents, "referents")
    if weights.dim() != 5 or weights.shape[1] != 2 or weights.shape[-1] != 2:
        raise ValueError(f"weights must be (P, 2, num_layers, H, 2) (pairs, sentences, layers, heads, nouns), "
                         f"got {tuple(weights.shape)}")
    if tuple(referents.shape) != tuple(weights.shape[:2]) or referents.is_floating_point() or \
            not bool(((referents == 0) | (referents == 1)).all()):
        raise ValueError(f"referents must be a (P, 2) integer tensor of 0 and 1 (P = {weights.shape[0]}), got "
                         f"shape {tuple(referents.shape)}, dtype {referents.dtype}")


def referent_correct(weights: torch.Tensor, referents: torch.Tensor) -> torch.Tensor:
    """Whether each head gives the right noun more weight than the wrong one.

    Parameters
    ----------
    weights : torch.Tensor, shape (P, 2, num_layers, H, 2)
    referents : torch.LongTensor, shape (P, 2)

    Returns
    -------
    torch.BoolTensor, shape (P, 2, num_layers, H)
        Strictly more (a tie counts as wrong).
    """
    _check_weights(weights, referents)
    r = referents.long()[:, :, None, None, None].expand(*weights.shape[:-1], 1)
    right = weights.gather(-1, r)[..., 0]
    wrong = weights.gather(-1, 1 - r)[..., 0]
    return right > wrong


def _check_index_set(idx, n: int, name: str) -> np.ndarray:
    idx = np.asarray(idx)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"{name} must be a non-empty 1-D array of pair indices in [0, {n}), got {idx!r}")
    return idx


def split_pairs(n_pairs: int, n_selection: int, rng: np.random.Generator) -> tuple:
    """A random split of the pairs into a selection set and a held-out set.

    Parameters
    ----------
    n_pairs : int
    n_selection : int
        From 1 to ``n_pairs - 1``.
    rng : numpy.random.Generator

    Returns
    -------
    selection, heldout : numpy.ndarray of int, sorted, disjoint, together 0 .. n_pairs - 1
    """
    n_pairs = check_positive_count(n_pairs, "n_pairs")
    n_selection = check_positive_count(n_selection, "n_selection")
    if n_selection >= n_pairs:
        raise ValueError(f"n_selection must leave some pairs held out: got {n_selection} of {n_pairs}")
    order = check_generator(rng).permutation(n_pairs)
    return np.sort(order[:n_selection]), np.sort(order[n_selection:])


def head_accuracy(correct: torch.Tensor, pairs) -> torch.Tensor:
    """Fraction of the sentences of ``pairs`` where each head prefers the right noun.

    Parameters
    ----------
    correct : torch.BoolTensor, shape (P, 2, num_layers, H)
        From :func:`referent_correct`.
    pairs : array_like of int
        Which pairs.

    Returns
    -------
    torch.Tensor, shape (num_layers, H)
    """
    check_torch_tensor(correct, "correct")
    if correct.dim() != 4 or correct.shape[1] != 2:
        raise ValueError(f"correct must be (P, 2, num_layers, H), got {tuple(correct.shape)}")
    idx = _check_index_set(pairs, correct.shape[0], "pairs")
    return correct[torch.as_tensor(idx)].float().mean((0, 1))


def select_heads(weights: torch.Tensor, referents: torch.Tensor, selection, k: int = 3) -> list:
    """The ``k`` heads that prefer the right noun most often on the selection pairs.

    Ties are broken by the mean margin (weight on the right noun minus weight on the wrong one),
    then by (layer, head) order.

    Parameters
    ----------
    weights : torch.Tensor, shape (P, 2, num_layers, H, 2)
    referents : torch.LongTensor, shape (P, 2)
    selection : array_like of int
    k : int

    Returns
    -------
    list of tuple (layer, head)
        0-based.
    """
    correct = referent_correct(weights, referents)
    idx = _check_index_set(selection, weights.shape[0], "selection")
    n_layers, H = weights.shape[2], weights.shape[3]
    k = check_positive_count(k, "k")
    if k > n_layers * H:
        raise ValueError(f"k={k} exceeds the {n_layers * H} heads")
    acc = head_accuracy(correct, idx).flatten().double()
    w = weights[torch.as_tensor(idx)]
    r = referents[torch.as_tensor(idx)].long()[:, :, None, None, None].expand(*w.shape[:-1], 1)
    margin = (w.gather(-1, r) - w.gather(-1, 1 - r))[..., 0].mean((0, 1)).flatten().double()
    keys = [(-float(acc[i]), -float(margin[i]), i) for i in range(n_layers * H)]
    return [(i // H, i % H) for _, _, i in sorted(keys)[:k]]


def sign_test(k: int, n: int) -> float:
    """Two-sided exact binomial test of ``k`` successes in ``n`` trials against p = 1/2.

    Parameters
    ----------
    k, n : int
        0 <= k <= n.

    Returns
    -------
    float
        ``min(1, 2 P(X >= max(k, n - k)))`` for X ~ Binomial(n, 1/2); 1.0 when n = 0.
    """
    k, n = check_count(k, "k"), check_count(n, "n")
    if k > n:
        raise ValueError(f"k must be at most n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    m = max(k, n - k)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(m, n + 1)) / 2 ** n)


def paired_permutation_test(differences) -> float:
    """Two-sided exact test that paired differences (e.g. split by split) are centred on 0.

    Under the null hypothesis every difference is as likely to have the opposite sign: the p-value
    is the fraction of the ``2^n`` sign flips whose mean is at least as far from 0 as the observed one.

    Parameters
    ----------
    differences : array_like of float, shape (n,)
        1 <= n <= 20.

    Returns
    -------
    float
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or not 1 <= d.size <= 20 or not np.isfinite(d).all():
        raise ValueError(f"differences must be 1 to 20 finite numbers, got {differences!r}")
    signs = 1 - 2 * ((np.arange(2 ** d.size)[:, None] >> np.arange(d.size)) & 1)   # every sign pattern
    flipped = np.abs((signs * d).mean(1))
    return float(np.mean(flipped >= abs(d.mean()) - 1e-12))


def accuracy_spread(correct_pairs: torch.Tensor) -> dict:
    """One head's accuracy over a set of pairs, its binomial standard error, and a sign test on the pairs.

    Within a pair, a head blind to the flipped word is right exactly once. Only the pairs where it
    is right twice (it follows the flip) or wrong twice (it follows it the wrong way) tell
    anything, and without knowledge of reference each of those is as likely as the other: the
    sign test compares their counts with a fair coin.

    Parameters
    ----------
    correct_pairs : torch.BoolTensor, shape (n, 2)
        The head's right/wrong on both sentences of ``n`` pairs.

    Returns
    -------
    dict
        ``"accuracy"``; ``"se"``, the binomial standard error sqrt(p (1 - p) / N) over the N = 2n
        sentences (as if they were independent); ``"n"``: N; ``"both"``, ``"one"``, ``"neither"``:
        how many pairs the head gets right in both sentences, in one, in neither; ``"p_sign"``:
        :func:`sign_test` of ``both`` among ``both + neither``.
    """
    check_torch_tensor(correct_pairs, "correct_pairs")
    if correct_pairs.dim() != 2 or correct_pairs.shape[1] != 2 or correct_pairs.shape[0] == 0:
        raise ValueError(f"correct_pairs must be (n, 2) with n >= 1, got {tuple(correct_pairs.shape)}")
    right = correct_pairs.long().sum(1)
    p = float(right.sum()) / (2 * len(right))
    both, neither = int((right == 2).sum()), int((right == 0).sum())
    return {"accuracy": p, "se": math.sqrt(p * (1 - p) / (2 * len(right))), "n": 2 * len(right),
            "both": both, "one": len(right) - both - neither, "neither": neither,
            "p_sign": sign_test(both, both + neither)}


def winograd_report(weights: torch.Tensor, referents: torch.Tensor, selection, heldout, k: int = 3) -> dict:
    """Choose heads on the selection pairs; measure them, and the mean over heads, on the held-out pairs.

    Parameters
    ----------
    weights : torch.Tensor, shape (P, 2, num_layers, H, 2)
    referents : torch.LongTensor, shape (P, 2)
    selection, heldout : array_like of int
        Disjoint pair indices.
    k : int
        Heads chosen.

    Returns
    -------
    dict
        ``"heads"``: list of dicts ``layer``, ``head`` (0-based), ``selection`` (accuracy on the
        selection pairs) and ``heldout`` (the dict of :func:`accuracy_spread`); ``"mean_over_heads"``:
        :func:`accuracy_spread` of the head-averaged weights on the held-out pairs (no choice made);
        ``"selection_accuracy"``, ``"heldout_accuracy"``: (num_layers, H) tensors; ``"chance"``: 0.5.
    """
    correct = referent_correct(weights, referents)
    sel = _check_index_set(selection, weights.shape[0], "selection")
    held = _check_index_set(heldout, weights.shape[0], "heldout")
    if set(sel.tolist()) & set(held.tolist()):
        raise ValueError("selection and heldout share pairs: a head must be confirmed on pairs it was not chosen on")
    sel_acc, held_acc = head_accuracy(correct, sel), head_accuracy(correct, held)
    held_t = torch.as_tensor(held)
    heads = [{"layer": l, "head": h, "selection": float(sel_acc[l, h]),
              "heldout": accuracy_spread(correct[held_t][:, :, l, h])}
             for l, h in select_heads(weights, referents, sel, k)]
    mean_correct = referent_correct(weights.mean((2, 3), keepdim=True), referents)[:, :, 0, 0]
    return {"heads": heads, "mean_over_heads": accuracy_spread(mean_correct[held_t]),
            "selection_accuracy": sel_acc, "heldout_accuracy": held_acc, "chance": 0.5}


def repeated_selection(weights: torch.Tensor, referents: torch.Tensor, n_splits: int, n_selection: int,
                       rng: np.random.Generator) -> dict:
    """Repeat choose-then-confirm over many random splits: how well does the best-looking head hold up?

    Parameters
    ----------
    weights : torch.Tensor, shape (P, 2, num_layers, H, 2)
    referents : torch.LongTensor, shape (P, 2)
    n_splits : int
    n_selection : int
        Pairs in each selection set.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``"selection"``, ``"heldout"``: numpy arrays (n_splits,), the accuracy of each split's best
        head on its own selection pairs and on the held-out pairs.
    """
    correct = referent_correct(weights, referents)
    n_splits = check_positive_count(n_splits, "n_splits")
    sel_out, held_out = [], []
    for _ in range(n_splits):
        sel, held = split_pairs(weights.shape[0], n_selection, rng)
        (l, h), = select_heads(weights, referents, sel, k=1)
        sel_out.append(float(head_accuracy(correct, sel)[l, h]))
        held_out.append(float(head_accuracy(correct, held)[l, h]))
    return {"selection": np.array(sel_out), "heldout": np.array(held_out)}


# ----------------------------------------------------------------------------- probes by layer

def probe_sentences() -> dict:
    """Every template sentence of the probe task, for every word (train and test words alike).

    Returns
    -------
    dict
        ``"sentences"``: list of N str; ``"labels"``: torch.LongTensor (N,), the category;
        ``"word_index"``: numpy.ndarray (N,), the word's index within its category (0 .. 15);
        ``"classes"``: the category names. The words and templates are those of
        :func:`attnlib.pretrained.template_task`.
    """
    from attnlib.pretrained.probe import CATEGORIES, TEMPLATES

    sentences, labels, word_index = [], [], []
    for label, words in enumerate(CATEGORIES.values()):
        for i, word in enumerate(words):
            for t in TEMPLATES:
                sentences.append(t.format(word))
                labels.append(label)
                word_index.append(i)
    return {"sentences": sentences, "labels": torch.tensor(labels), "word_index": np.array(word_index),
            "classes": list(CATEGORIES)}


def layer_features(model, tokenizer, sentences: Sequence[str], batch_size: int = 64) -> dict:
    """Mean-pooled, unit-length features of every sentence, from the word table and from every layer.

    Parameters
    ----------
    model : attnlib.pretrained.BertEncoder
    tokenizer : attnlib.pretrained.WordPieceTokenizer
    sentences : sequence of str
    batch_size : int

    Returns
    -------
    dict of str to torch.Tensor (N, E)
        ``"word table"``: the mean of the word embeddings ``E_word[t_p]`` over the real tokens (no
        position, no LayerNorm, no attention); ``"embeddings"``: the embedding layer's output
        ``LN(E_word + E_pos + E_type)`` (no attention either); ``"layer 1"`` .. ``"layer N"``: each
        encoder layer's output. Each row is the masked mean over real tokens scaled to unit length;
        ``"layer N"`` is :func:`attnlib.pretrained.sentence_embeddings`.
    """
    from attnlib.checks import check_texts
    from attnlib.pretrained.minilm import mean_pooling

    sentences = check_texts(sentences, "sentences")
    batch_size = check_positive_count(batch_size, "batch_size")
    if not isinstance(model, nn.Module) or not hasattr(model, "word_embeddings"):
        raise TypeError(f"model must be an attnlib.pretrained.BertEncoder, got {type(model).__name__}")
    dev = next(model.parameters()).device
    names = ["word table", "embeddings"] + [f"layer {i + 1}" for i in range(len(model.layers))]
    parts = {n: [] for n in names}
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(sentences[start:start + batch_size], device=dev)
            ids, mask = batch["input_ids"], batch["attention_mask"]
            out = model(ids, mask, output_attentions=False, output_hidden_states=True)
            for n, h in zip(names, (model.word_embeddings(ids),) + out.hidden_states):
                parts[n].append(nn.functional.normalize(mean_pooling(h, mask), dim=1).float().cpu())
    return {n: torch.cat(v) for n, v in parts.items()}


def word_splits(n_splits: int, n_words: int = 16, n_train: int = 10, n_classes: int = 4,
                rng: np.random.Generator | None = None) -> list:
    """Splits of each category's words into training and test words.

    Split 0 is :func:`attnlib.pretrained.template_task`'s (the first ``n_train`` words train);
    the others draw ``n_train`` words per category at random.

    Parameters
    ----------
    n_splits, n_words, n_train, n_classes : int
    rng : numpy.random.Generator
        Needed when ``n_splits > 1``.

    Returns
    -------
    list of numpy.ndarray of bool, each (n_classes, n_words)
        True where the word is a training word.
    """
    n_splits = check_positive_count(n_splits, "n_splits")
    n_words = check_positive_count(n_words, "n_words")
    n_train = check_positive_count(n_train, "n_train")
    n_classes = check_positive_count(n_classes, "n_classes")
    if n_train >= n_words:
        raise ValueError(f"n_train must leave test words: got {n_train} of {n_words}")
    first = np.zeros((n_classes, n_words), dtype=bool)
    first[:, :n_train] = True
    splits = [first]
    if n_splits > 1:
        rng = check_generator(rng)
    for _ in range(n_splits - 1):
        s = np.zeros((n_classes, n_words), dtype=bool)
        for c in range(n_classes):
            s[c, rng.permutation(n_words)[:n_train]] = True
        splits.append(s)
    return splits


class BatchedProbe(nn.Module):
    """``G x K`` independent linear classifiers: ``K`` probes on each of ``G`` sets of features.

    The ``K`` probes of a group read the same ``N`` feature vectors (each is trained on its own
    rows, see :func:`probe_by_layer`), so one batched matrix product of shape (G, N, E) x
    (G, E, K C) computes them all. Probe ``(g, k)`` starts as ``torch.nn.Linear(E, C)`` would under
    ``torch.manual_seed(seeds[k])`` (weights and bias uniform in ±1/sqrt(E)).

    Parameters
    ----------
    groups, in_features, num_classes : int
    seeds : sequence of int
        One per probe of a group (K of them).
    """

    def __init__(self, groups: int, in_features: int, num_classes: int, seeds: Sequence[int]):
        super().__init__()
        groups = check_positive_count(groups, "groups")
        in_features = check_positive_count(in_features, "in_features")
        num_classes = check_positive_count(num_classes, "num_classes")
        if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__") or len(seeds) == 0:
            raise TypeError(f"seeds must be a non-empty list of int, one per probe of a group, got {seeds!r}")
        seeds = [check_count(s, "seeds[i]") for s in seeds]
        ws, bs = [], []
        state = torch.random.get_rng_state()
        try:
            for s in seeds:
                torch.manual_seed(s)
                lin = nn.Linear(in_features, num_classes)
                ws.append(lin.weight.detach().T.clone())  # (E, C)
                bs.append(lin.bias.detach().clone())
        finally:
            torch.random.set_rng_state(state)  # the caller's random stream is left as it was
        self.num_classes = num_classes
        self.weight = nn.Parameter(torch.stack(ws, 1).repeat(groups, 1, 1, 1))  # (G, E, K, C)
        self.bias = nn.Parameter(torch.stack(bs).repeat(groups, 1, 1))          # (G, K, C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (G, N, K, C) of features ``x`` (G, N, E): probe (g, k) on the rows of group g."""
        G, E, K, C = self.weight.shape
        check_torch_tensor(x, "x", floating=True)
        if x.dim() != 3 or x.shape[0] != G or x.shape[2] != E:
            raise ValueError(f"x must be (G={G}, N, E={E}), got {tuple(x.shape)}")
        return torch.bmm(x, self.weight.reshape(G, E, K * C)).reshape(G, -1, K, C) + self.bias[:, None]


def probe_by_layer(features: dict, labels: torch.Tensor, word_index, splits: Sequence[np.ndarray],
                   steps: int = 200, lr: float = 0.05, progress: bool = True) -> dict:
    """Train the probe on every feature set and every word split; test on the unseen words.

    All ``len(features) * len(splits)`` probes train together as one :class:`BatchedProbe` with
    :func:`attnlib.torch.train` (Adam, full batch, ``steps`` steps, no clipping: the recipe of
    :func:`attnlib.pretrained.train_probe`). The loss is the sum of every probe's mean
    cross-entropy over its own training sentences, so each probe gets exactly its own gradient
    (and Adam, element by element, its own update); the probe of split ``s`` starts from seed ``s``.

    Parameters
    ----------
    features : dict of str to torch.Tensor (N, E)
        E.g. from :func:`layer_features`; all of one shape.
    labels : torch.LongTensor, shape (N,)
    word_index : array_like of int, shape (N,)
        Each sentence's word, within its category.
    splits : sequence of numpy.ndarray of bool (num_classes, num_words)
        From :func:`word_splits`: True marks a training word.
    steps : int
    lr : float
    progress : bool

    Returns
    -------
    dict
        ``"test"``, ``"train"``: dict of feature name to numpy.ndarray (len(splits),) of accuracies.
    """
    from attnlib.torch import train

    if not isinstance(features, dict) or not features:
        raise TypeError(f"features must be a non-empty dict of name to (N, E) tensors, got {type(features).__name__}")
    shape = None
    for name, f in features.items():
        check_torch_tensor(f, f"features[{name!r}]", floating=True)
        shape = shape or tuple(f.shape)
        if f.dim() != 2 or tuple(f.shape) != shape:
            raise ValueError(f"features must all be (N, E) of one shape, got {tuple(f.shape)} for {name!r}")
    check_torch_tensor(labels, "labels")
    word_index = np.asarray(word_index)
    if tuple(labels.shape) != (shape[0],) or labels.is_floating_point() or word_index.shape != (shape[0],):
        raise ValueError(f"labels (integer classes) and word_index must be ({shape[0]},), got "
                         f"{tuple(labels.shape)} {labels.dtype} and {word_index.shape}")
    steps = check_positive_count(steps, "steps")
    lr = check_real(lr, "lr", positive=True)
    if isinstance(splits, np.ndarray) or not isinstance(splits, (list, tuple)) or not splits:
        raise TypeError("splits must be a non-empty list of (num_classes, num_words) boolean arrays (word_splits)")
    lab = labels.numpy()
    try:
        is_train = torch.as_tensor(np.stack([np.asarray(s, dtype=bool)[lab, word_index] for s in splits]))
    except IndexError as e:
        raise ValueError(f"every split must be a (num_classes, num_words) array covering labels and word_index: {e}")
    if not bool(is_train.any(1).all()) or bool(is_train.all(1).any()):
        raise ValueError("every split needs training and test sentences")
    names, K, C = list(features), len(splits), int(labels.max()) + 1
    X = torch.stack([features[n] for n in names])            # (G, N, E)
    target = labels[None, None, :].expand(len(names), K, -1)  # (G, K, N)
    probe = BatchedProbe(len(names), shape[1], C, list(range(K)))
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    w_train = is_train.float() / is_train.sum(1, keepdim=True)  # (K, N): mean over each split's training rows

    def loss_fn(m, batch):
        ce = nn.functional.cross_entropy(m(batch).permute(0, 3, 2, 1), target, reduction="none")  # (G, K, N)
        return (ce * w_train).sum()

    train(probe, [X], loss_fn, opt, steps=steps, clip=None, progress=progress, desc=f"{len(names) * K} probes")
    probe.eval()
    with torch.no_grad():
        right = (probe(X).argmax(-1).transpose(1, 2) == labels).float()  # (G, K, N)
    acc_tr = ((right * is_train).sum(-1) / is_train.sum(-1)).numpy()
    acc_te = ((right * ~is_train).sum(-1) / (~is_train).sum(-1)).numpy()
    return {"test": dict(zip(names, acc_te)), "train": dict(zip(names, acc_tr))}


# ----------------------------------------------------------------------------- head patterns, word overlap

def head_patterns(model, tokenizer, sentences: Sequence[str], batch_size: int = 32) -> dict:
    """How much each head attends to simple positions, averaged over every real query of every sentence.

    Parameters
    ----------
    model : attnlib.pretrained.BertEncoder
    tokenizer : attnlib.pretrained.WordPieceTokenizer
    sentences : sequence of str
    batch_size : int

    Returns
    -------
    dict of str to torch.Tensor (num_layers, H)
        ``"previous"``: the weight of query p on key p - 1 (queries p >= 1); ``"next"``: on key
        p + 1 (up to the last real token); ``"self"``: on itself; ``"cls"``: on ``[CLS]`` (position
        0); ``"sep"``: on the sentence's ``[SEP]``. Each is the mean over all those queries of all
        sentences (padding excluded); a head attending uniformly over L tokens scores about 1/L.
    """
    from attnlib.checks import check_texts

    sentences = check_texts(sentences, "sentences")
    if not sentences:
        raise ValueError("sentences is empty")
    batch_size = check_positive_count(batch_size, "batch_size")
    _check_model(model)
    dev = next(model.parameters()).device
    sums = {k: 0.0 for k in ("previous", "next", "self", "cls", "sep")}
    counts = dict.fromkeys(sums, 0)
    for start in range(0, len(sentences), batch_size):
        batch = tokenizer(sentences[start:start + batch_size], device=dev)
        with torch.inference_mode():
            att = model(batch["input_ids"], batch["attention_mask"], output_attentions=True).attentions
        A = torch.stack(att, 1).float().cpu()  # (B, layers, H, L, L)
        for b, n in enumerate(batch["attention_mask"].sum(1).tolist()):
            a = A[b, :, :, :n, :n]  # (layers, H, n, n), real tokens only
            p = torch.arange(n)
            for key, w in (("previous", a[:, :, p[1:], p[1:] - 1]), ("next", a[:, :, p[:-1], p[:-1] + 1]),
                           ("self", a[:, :, p, p]), ("cls", a[:, :, :, 0]), ("sep", a[:, :, :, n - 1])):
                sums[key] = sums[key] + w.sum(-1)
                counts[key] += w.shape[-1]
    return {k: sums[k] / counts[k] for k in sums}


def overlap_similarity(queries: Sequence[str], documents: Sequence[str], tokenizer) -> torch.Tensor:
    """Word overlap, the baseline of semantic search: the Jaccard index of the two sets of word pieces.

    Punctuation and the special tokens are left out; the pieces are the tokenizer's (lower-cased).

    Parameters
    ----------
    queries, documents : sequence of str
    tokenizer : attnlib.pretrained.WordPieceTokenizer

    Returns
    -------
    torch.Tensor, shape (len(queries), len(documents))
        ``|A ∩ B| / |A ∪ B|`` (0 when both are empty).
    """
    from attnlib.checks import check_texts

    queries = check_texts(queries, "queries")
    documents = check_texts(documents, "documents")
    if not callable(getattr(tokenizer, "tokenize", None)):
        raise TypeError(f"tokenizer must have a tokenize method (a WordPieceTokenizer), got {type(tokenizer).__name__}")

    def words(text):
        return {w for w in tokenizer.tokenize(text) if any(ch.isalnum() for ch in w)}

    Q, D = [words(q) for q in queries], [words(d) for d in documents]
    return torch.tensor([[len(a & b) / len(a | b) if a | b else 0.0 for b in D] for a in Q])
