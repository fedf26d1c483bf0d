"""Each chapter's experiments: the runs, sweeps and measurements its prose rests on.

One module per chapter, above every layer of :mod:`attnlib.torch` (it may import any of them;
none imports it). Chapters import from here directly, e.g.
``from attnlib.experiments.gpt import train_language_model``.

- :mod:`attnlib.experiments.word_embeddings`   chapter 2: word analogies, chosen and held out
- :mod:`attnlib.experiments.multi_head`        chapter 7: interleaved timing ratios
- :mod:`attnlib.experiments.numpy_to_torch`    chapter 8: finite differences, path timings
- :mod:`attnlib.experiments.bottleneck`        chapter 9: the fixed-length bottleneck
- :mod:`attnlib.experiments.luong`             chapter 11: the attention variants compared
- :mod:`attnlib.experiments.hard_structured`   chapter 12: lookup and segment models and metrics
- :mod:`attnlib.experiments.transformer_block` chapter 13: depth, LayerNorm placement, warm-up
- :mod:`attnlib.experiments.encoder_decoder`   chapter 14: the date recipe and attention maps
- :mod:`attnlib.experiments.gpt`               chapter 15: training, context lengths, KV-cache timing
- :mod:`attnlib.experiments.pretrained_encoder` chapter 16: Winograd minimal pairs, probes by layer, head patterns
- :mod:`attnlib.experiments.results`           the maintainer sweeps (``make experiments``) and their stored results
"""
