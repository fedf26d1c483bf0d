"""attnlib's all-MiniLM-L6-v2 next to the libraries people use in production, on the same inputs.

:func:`reference_errors` runs ``transformers``' ``BertTokenizer`` and ``BertModel`` (eager attention,
attention weights returned) and ``sentence-transformers``' ``SentenceTransformer`` from the
installed model folder (offline: nothing downloads) and reports the largest differences from
attnlib's tokenizer, encoder and :func:`~attnlib.pretrained.sentence_embeddings`.
"""
from __future__ import annotations

import os
from typing import Sequence

import torch

__all__ = ["reference_errors"]


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def reference_errors(sentences: Sequence[str]) -> dict:
    """Compare attnlib with transformers and sentence-transformers on a padded batch of sentences.

    Parameters
    ----------
    sentences : sequence of str

    Returns
    -------
    dict
        ``"ids_equal"`` (bool: token ids and attention masks identical), ``"hidden"`` (max abs
        difference of the last hidden states over real tokens), ``"attention"`` (max abs difference
        over every layer's attention weights), ``"embeddings"`` (max abs difference of the
        sentence embeddings), ``"shape"`` (of the padded batch) and ``"layers"`` (number of
        attention tensors compared).
    """
    from attnlib.checks import check_texts

    sentences = [sentences] if isinstance(sentences, str) else check_texts(sentences, "sentences")
    _quiet_transformers()
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, BertModel

    from attnlib.data.minilm_files import minilm_model_dir
    from attnlib.pretrained.minilm import load_minilm, sentence_embeddings

    folder = str(minilm_model_dir())
    model, tokenizer = load_minilm(device="cpu")
    ref_tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    ref_model = BertModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    ours_b = tokenizer(list(sentences))
    ref_b = ref_tok(list(sentences), padding=True, truncation=True, max_length=512, return_tensors="pt")
    ids_equal = (ours_b["input_ids"].shape == ref_b["input_ids"].shape
                 and bool((ours_b["input_ids"] == ref_b["input_ids"]).all())
                 and bool((ours_b["attention_mask"] == ref_b["attention_mask"]).all()))
    with torch.inference_mode():
        ours = model(ours_b["input_ids"], ours_b["attention_mask"], output_attentions=True)
        ref = ref_model(input_ids=ref_b["input_ids"], attention_mask=ref_b["attention_mask"],
                        output_attentions=True)
    real = ours_b["attention_mask"].bool()
    st = SentenceTransformer(folder, device="cpu", local_files_only=True)
    e_ref = st.encode(list(sentences), convert_to_tensor=True, show_progress_bar=False).cpu()
    e_ours = sentence_embeddings(sentences, device="cpu")
    return {"ids_equal": ids_equal, "shape": tuple(ours_b["input_ids"].shape),
            "hidden": float((ours.last_hidden_state - ref.last_hidden_state)[real].abs().max()),
            "attention": max(float((a - b).abs().max()) for a, b in zip(ours.attentions, ref.attentions)),
            "layers": len(ref.attentions),
            "embeddings": float((e_ours - e_ref).abs().max())}
