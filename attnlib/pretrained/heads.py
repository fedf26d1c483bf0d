r"""Looking inside the encoder: where one word attends, in every layer and head.

For a sentence such as *"The courier could not lift the parcel because it was too heavy."* we read,
in each of the 6 x 12 heads, the attention weight from the pronoun (*it*) to each candidate it may
refer to (*courier*, *parcel*). A head that tracks the reference should prefer *parcel* here and
*courier* in the twin sentence *"... because he was too tired."*: :func:`telling_heads` ranks the
heads by that preference, summed over the sentences.
"""
from __future__ import annotations

from typing import Sequence

import torch

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
    """
    A = torch.stack([a[example] for a in attentions])  # (layers, H, L, L)
    return A[:, :, query][:, :, list(keys)].detach().cpu()


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
    """
    if len(weights) != len(referents) or not weights:
        raise ValueError(f"need one referent per sentence, got {len(weights)} weights and "
                         f"{len(referents)} referents")
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
    records = {}
    dev = next(model.parameters()).device
    for s in sentences:
        batch = tokenizer([s], device=dev)
        with torch.inference_mode():
            out = model(batch["input_ids"], batch["attention_mask"], output_attentions=True)
        records[s] = {"tokens": tokenizer.convert_ids_to_tokens(batch["input_ids"][0]),
                      "attentions": torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()}
    return records
