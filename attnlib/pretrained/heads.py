r"""Looking inside the encoder: where one word attends, in every layer and head.

For a sentence such as *"The courier could not lift the parcel because it was too heavy."* we read,
in each of the 6 x 12 heads, the attention weight from the pronoun (*it*) to each candidate it may
refer to (*courier*, *parcel*). A head that tracks the reference should prefer *parcel* here and
*courier* in the twin sentence *"... because he was too tired."*: :func:`telling_heads` ranks the
heads by that preference, summed over the sentences.

Such a twin is only an illustration: with two different pronouns, a head that sends *he* to people
and *it* to things looks as if it resolved both, and the best of 72 heads on two sentences looks
good on them whatever it does. Chapter 16 tests heads on Winograd-style minimal pairs (one
pronoun, one flipped word), chosen on some pairs and confirmed on others:
:mod:`attnlib.experiments.pretrained_encoder`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from attnlib.checks import check_index, check_text, check_texts, check_torch_tensor
from attnlib.shapes import check_count

__all__ = ["word_attention", "pronoun_attention", "telling_heads", "attention_records"]


def word_attention(attentions: Sequence[torch.Tensor], query: int, keys: Sequence[int],
                   example: int = 0) -> torch.Tensor:
    """The weights from one query token to chosen key tokens, in every layer and head.

    Parameters
    ----------
    attentions : sequence of torch.Tensor, each (B, H, L, L)
        One tensor per layer, as ``EncoderOutput.attentions``.
    query : int
        Position of the query token.
    keys : sequence of int
        Positions of the key tokens.
    example : int
        Which element of the batch.

    Returns
    -------
    torch.Tensor, shape (num_layers, H, len(keys))

    Raises
    ------
    ValueError
        When ``attentions`` is empty or its tensors are not (B, H, L, L) of one shape, or
        ``query``, a key or ``example`` is not an index in range (negative indices are refused).
    """
    shape = _check_attentions(attentions)
    B, L = shape[0], shape[-1]
    query = check_index(_item(query), L, "query", "positions")
    if isinstance(keys, (str, bytes)) or not hasattr(keys, "__iter__"):
        raise TypeError(f"keys must be a sequence of int positions, got {type(keys).__name__}")
    keys = [check_index(_item(k), L, "keys", "positions") for k in keys]
    example = check_index(_item(example), B, "example", "examples in the batch")
    A = torch.stack([a[example] for a in attentions])  # (layers, H, L, L)
    return A[:, :, query][:, :, list(keys)].detach().cpu()


def _check_attentions(attentions) -> tuple:
    """One (B, H, L, L) tensor per layer, all of one shape; return that shape."""
    if isinstance(attentions, (str, bytes)) or not hasattr(attentions, "__len__"):
        raise TypeError(f"attentions must be a sequence of (B, H, L, L) tensors, one per layer "
                        f"(EncoderOutput.attentions), got {type(attentions).__name__}")
    if len(attentions) == 0:
        raise ValueError("attentions is empty: pass one (B, H, L, L) tensor per layer (EncoderOutput.attentions)")
    for a in attentions:
        check_torch_tensor(a, "attentions[i]")
    shape = tuple(attentions[0].shape)
    if len(shape) != 4 or shape[-1] != shape[-2] or any(tuple(a.shape) != shape for a in attentions):
        raise ValueError(f"attentions must hold (B, H, L, L) tensors of one shape, got shapes "
                         f"{sorted({tuple(a.shape) for a in attentions})}")
    return shape


def _find(tokens: Sequence[str], word: str) -> int:
    if word not in tokens:
        raise ValueError(f"{word!r} is not one of the tokens {list(tokens)}")
    return list(tokens).index(word)


def pronoun_attention(model, tokenizer, sentence: str, pronoun: str, candidates: Sequence[str]) -> dict:
    """Run the encoder on one sentence; read the pronoun's attention to each candidate referent.

    Parameters
    ----------
    model : attnlib.pretrained.BertEncoder
    tokenizer : attnlib.pretrained.WordPieceTokenizer
    sentence : str
    pronoun : str
        A word that is one token, e.g. ``"it"``.
    candidates : sequence of str
        Words that are one token each, e.g. ``("courier", "parcel")``.

    Returns
    -------
    dict
        ``"tokens"`` (list of str), ``"attentions"`` (tuple of (1, H, L, L) tensors, one per layer),
        ``"weights"`` (torch.Tensor (num_layers, H, len(candidates))), ``"candidates"``.
    """
    check_text(sentence, "sentence")
    check_text(pronoun, "pronoun")
    candidates = check_texts(candidates, "candidates")
    _check_model(model)
    batch = tokenizer([sentence], device=next(model.parameters()).device)
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    q, keys = _find(tokens, pronoun), [_find(tokens, c) for c in candidates]
    with torch.inference_mode():
        out = model(batch["input_ids"], batch["attention_mask"], output_attentions=True)
    attentions = tuple(a.cpu() for a in out.attentions)
    return {"tokens": tokens, "attentions": attentions, "candidates": list(candidates),
            "weights": word_attention(attentions, q, keys)}


def telling_heads(weights: Sequence[torch.Tensor], referents: Sequence[int], k: int = 3) -> list:
    """Heads that prefer the right referent in every sentence, best first.

    The score of a head is the sum over sentences of (weight on the right referent) minus
    (weight on the best wrong candidate).

    Parameters
    ----------
    weights : sequence of torch.Tensor, each (num_layers, H, C)
        One per sentence, from :func:`pronoun_attention`.
    referents : sequence of int
        For each sentence, the index (in its candidates) of the true referent.
    k : int
        How many heads to return.

    Returns
    -------
    list of tuple (layer, head, score)
        0-based layer and head; ``score`` a float.

    Raises
    ------
    ValueError
        When the counts of weights and referents differ, the weights are not (num_layers, H, C)
        tensors of one shape with C >= 2, a referent is not an index below C, or ``k`` is not an
        integer from 0 to the number of heads.
    """
    if isinstance(weights, torch.Tensor) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights must be a list of (num_layers, H, C) tensors, one per sentence, got "
                        f"{type(weights).__name__}")
    if isinstance(referents, (str, bytes)) or not hasattr(referents, "__len__"):
        raise TypeError(f"referents must be a list of int (one per sentence), got {type(referents).__name__}")
    if len(weights) != len(referents) or not weights:
        raise ValueError(f"need one referent per sentence, got {len(weights)} weights and "
                         f"{len(referents)} referents")
    for w in weights:
        check_torch_tensor(w, "weights[i]", floating=True)
    shape = tuple(weights[0].shape)
    if len(shape) != 3 or shape[-1] < 2 or any(tuple(w.shape) != shape for w in weights):
        raise ValueError(f"weights must be (num_layers, H, C) tensors of one shape with C >= 2 candidates, "
                         f"got shapes {sorted({tuple(w.shape) for w in weights})}")
    referents = [check_index(_item(r), shape[-1], "referents", "candidates") for r in referents]
    k = check_count(k, "k")
    if k > shape[0] * shape[1]:
        raise ValueError(f"k={k} exceeds the {shape[0] * shape[1]} heads ({shape[0]} layers x {shape[1]})")
    score = 0
    for w, r in zip(weights, referents):
        others = torch.cat([w[..., :r], w[..., r + 1:]], dim=-1)
        score = score + w[..., r] - others.amax(-1)
    # stable: equal scores keep (layer, head) order on every device and build
    order = torch.argsort(score.flatten(), descending=True, stable=True)[:k]
    H = score.shape[1]
    return [(int(i) // H, int(i) % H, round(float(score.flatten()[i]), 4)) for i in order]


def attention_records(model, tokenizer, sentences: Sequence[str]) -> dict:
    """Every layer's and head's attention for each sentence, ready for the explorer and the figures.

    Parameters
    ----------
    model : attnlib.pretrained.BertEncoder
    tokenizer : attnlib.pretrained.WordPieceTokenizer
    sentences : sequence of str

    Returns
    -------
    dict of str to dict
        ``records[sentence]["tokens"]``: list of str (L,); ``records[sentence]["attentions"]``:
        numpy.ndarray (num_layers, H, L, L), float32.
    """
    sentences = check_texts(sentences, "sentences")
    _check_model(model)
    records = {}
    dev = next(model.parameters()).device
    for s in sentences:
        batch = tokenizer([s], device=dev)
        with torch.inference_mode():
            out = model(batch["input_ids"], batch["attention_mask"], output_attentions=True)
        records[s] = {"tokens": tokenizer.convert_ids_to_tokens(batch["input_ids"][0]),
                      "attentions": torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()}
    return records


def _item(i):
    """A one-element integer tensor as a Python int (positions often come as tensors); else i."""
    if isinstance(i, torch.Tensor) and i.numel() == 1 and not i.is_floating_point() and i.dtype != torch.bool:
        return int(i)
    return i


def _check_model(model) -> None:
    if not isinstance(model, torch.nn.Module) or next(model.parameters(), None) is None:
        raise TypeError(f"model must be an encoder such as attnlib.pretrained.BertEncoder, got "
                        f"{type(model).__name__}")
