"""Misuse of ``attnlib.torch`` (and the chapters' experiments) meets a clear message.

Every case below is a plainly bad input a learner could pass: it must raise ``ValueError`` or
``TypeError`` at the entrance, and the message must name the parameter (or the shapes, or the
call that fixes it). A "wrong kind" (a NumPy array, a list) raises
:class:`attnlib.checks.TorchTypeError`, which is both. The last tests check that valid inputs at
the entrances changed here still work.

Devices: without a GPU, a tensor on PyTorch's ``meta`` device stands for "another device" (the
checks compare ``.device`` only, before any computation).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import attnlib.torch as at
from attnlib.checks import TorchTypeError
from attnlib.experiments import bottleneck, gpt, hard_structured, numpy_to_torch, transformer_block

torch.manual_seed(0)

F64 = torch.float64
META = "meta"  # "another device"

q = torch.randn(2, 5, 4)
k = torch.randn(2, 6, 4)
v = torch.randn(2, 6, 3)
x8 = torch.randn(2, 3, 8)
ids = torch.tensor([[1, 2, 3], [3, 4, 1]])
lengths = torch.tensor([3, 2])

mha = at.MultiHeadAttention(8, 2)
enc_layer = at.EncoderLayer(8, 2, 16, dropout=0.0)
dec_layer = at.DecoderLayer(8, 2, 16, dropout=0.0)
enc_stack = at.TransformerEncoder(2, 8, 2, 16, dropout=0.0)
dec_stack = at.TransformerDecoder(2, 8, 2, 16, dropout=0.0)
ffn = at.FeedForward(8, 16)
gpt_model = at.GPT(11, 8, 16, 4, 1)
tr = at.Transformer(7, 7, 8, 2, 16, num_encoder_layers=1, num_decoder_layers=1, dropout=0.0, max_len=16).eval()
gru_enc = at.GRUEncoder(7, 4, 6)
seq2seq = at.Seq2Seq(gru_enc, at.AttentionDecoder(7, 4, 6, 6, at.AdditiveAttention(6, 6, 5)))
additive = at.AdditiveAttention(6, 6, 5)
crf = at.CRFAttention(6, 6)
layer_cache = at.LayerKVCache(2, 4, 8, 4)
tagger = transformer_block.SequenceTagger(7, 10, d_model=8, num_heads=2, d_ff=16, num_layers=1)


def _memory():
    return tr.encode(ids, lengths)


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


# Each case: (id, call, exception type, regex the message must match)
CASES = [
    # ------------------------------------------------------------ dtype and device mixes
    ("sdpa-k-v-float64", lambda: at.scaled_dot_product_attention(q, k.double(), v.double()), ValueError,
     r"k is torch.float64 but q torch.float32.*k\.to\(torch.float32\)"),
    ("sdpa-v-float16", lambda: at.scaled_dot_product_attention(q, k, v.half()), ValueError,
     r"v is torch.float16 but q torch.float32"),
    ("sdpa-q-float64-fused", lambda: at.scaled_dot_product_attention(q.double(), k, v, need_weights=False),
     ValueError, r"k is torch.float32 but q torch.float64"),
    ("sdpa-k-on-meta", lambda: at.scaled_dot_product_attention(q, k.to(META), v), ValueError,
     r"k is on meta but q on cpu.*k\.to\('cpu'\)"),
    ("sdpa-mask-on-meta", lambda: at.scaled_dot_product_attention(
        q, k, v, mask=torch.ones(5, 6, dtype=torch.bool, device=META)), ValueError, r"mask is on meta"),
    ("sdpa-bias-on-meta", lambda: at.scaled_dot_product_attention(q, k, v, bias=torch.zeros(5, 6, device=META)),
     ValueError, r"bias is on meta"),
    ("mha-float64-batch", lambda: mha(x8.double(), x8.double(), x8.double()), ValueError,
     r"query is torch.float64 but the module's weights torch.float32.*query\.float\(\).*model\.double\(\)"),
    ("mha-value-float64", lambda: mha(x8, x8, x8.double()), ValueError, r"value is torch.float64"),
    ("mha-float32-into-float64-module", lambda: at.MultiHeadAttention(8, 2).double()(x8, x8, x8), ValueError,
     r"query\.double\(\).*model\.float\(\)"),
    ("mha-key-on-meta", lambda: mha(x8, x8.to(META), x8.to(META)), ValueError, r"key is on meta"),
    ("mha-int-query", lambda: mha(x8.long(), x8, x8), ValueError, r"query must be floating point.*query\.float\(\)"),
    ("mha-mask-on-meta", lambda: mha(x8, x8, x8, mask=torch.ones(3, 3, dtype=torch.bool, device=META)),
     ValueError, r"mask is on meta"),
    ("ffn-float64", lambda: ffn(x8.double()), ValueError, r"x is torch.float64.*x\.float\(\)"),
    ("encoder-layer-float64", lambda: enc_layer(x8.double()), ValueError, r"x is torch.float64.*model\.double\(\)"),
    ("decoder-layer-memory-float64", lambda: dec_layer(x8, x8.double()), ValueError, r"memory is torch.float64"),
    ("decoder-layer-x-on-meta", lambda: dec_layer(x8.to(META), x8), ValueError, r"x is on meta"),
    ("encoder-stack-float64", lambda: enc_stack(x8.double()), ValueError, r"x is torch.float64"),
    ("decoder-stack-memory-float16", lambda: dec_stack(x8, x8.half()), ValueError, r"memory is torch.float16"),
    ("gpt-ids-on-meta", lambda: gpt_model(torch.zeros(1, 3, dtype=torch.long, device=META)), ValueError,
     r"idx is on meta"),
    ("gpt-block-float64", lambda: gpt_model.blocks[0](torch.randn(1, 3, 16, dtype=F64)), ValueError,
     r"x is torch.float64"),
    ("causal-self-attention-float64", lambda: gpt_model.blocks[0].attn(torch.randn(1, 3, 16, dtype=F64)),
     ValueError, r"x is torch.float64"),
    ("transformer-src-on-meta", lambda: tr(ids.to(META), lengths, ids), ValueError, r"src is on meta"),
    ("transformer-decode-memory-float64", lambda: tr.decode(ids, _memory()[0].double(), _memory()[1]),
     ValueError, r"memory is torch.float64"),
    ("kv-cache-append-float64", lambda: layer_cache.append(torch.randn(2, 4, 1, 4, dtype=F64),
                                                           torch.randn(2, 4, 1, 4, dtype=F64)),
     ValueError, r"k is torch.float64 but the cache's buffers torch.float32"),
    ("kv-cache-append-meta", lambda: layer_cache.append(torch.randn(2, 4, 1, 4, device=META),
                                                        torch.randn(2, 4, 1, 4, device=META)),
     ValueError, r"k is on meta"),
    ("additive-attention-float64", lambda: additive(torch.randn(2, 6, dtype=F64), torch.randn(2, 4, 6, dtype=F64)),
     ValueError, r"query is torch.float64"),
    ("additive-attention-keys-float64", lambda: additive(torch.randn(2, 6), torch.randn(2, 4, 6, dtype=F64)),
     ValueError, r"keys is torch.float64"),
    ("attention-context-mix", lambda: at.attention_context(torch.rand(2, 4), torch.randn(2, 4, 3, dtype=F64)),
     ValueError, r"values is torch.float64"),

    # ------------------------------------------------------------ NumPy where a tensor belongs
    ("sdpa-numpy-mask", lambda: at.scaled_dot_product_attention(q, k, v, mask=np.ones((5, 6), bool)),
     TorchTypeError, r"mask must be a torch.Tensor.*torch\.from_numpy\(mask\)"),
    ("sdpa-numpy-q", lambda: at.scaled_dot_product_attention(q.numpy(), k, v), TorchTypeError,
     r"q must be a torch.Tensor.*torch\.from_numpy\(q\)"),
    ("sdpa-list-v", lambda: at.scaled_dot_product_attention(q, k, v.tolist()), TorchTypeError,
     r"v must be a torch.Tensor, got list"),
    ("mha-numpy-query", lambda: mha(x8.numpy(), x8, x8), TorchTypeError, r"torch\.from_numpy\(query\)"),
    ("mha-numpy-mask", lambda: mha(x8, x8, x8, mask=np.ones((3, 3), bool)), TorchTypeError,
     r"torch\.from_numpy\(mask\)"),
    ("encoder-layer-numpy-padding", lambda: enc_layer(x8, padding_mask=np.ones((2, 3), bool)), TorchTypeError,
     r"padding_mask must be a torch.Tensor.*torch\.from_numpy\(padding_mask\)"),
    ("decoder-layer-numpy-memory-padding", lambda: dec_layer(x8, x8, memory_padding_mask=np.ones((2, 3), bool)),
     TorchTypeError, r"memory_padding_mask.*torch\.from_numpy"),
    ("masked-softmax-numpy-mask", lambda: at.masked_softmax(torch.randn(2, 5), np.ones((2, 5), bool)),
     TorchTypeError, r"torch\.from_numpy\(mask\)"),
    ("masked-softmax-numpy-scores", lambda: at.masked_softmax(np.zeros((2, 5))), TorchTypeError,
     r"scores must be a torch.Tensor"),
    ("padding-mask-numpy-lengths", lambda: at.padding_mask(np.array([1, 2]), 3), TorchTypeError,
     r"lengths must be a 1-D integer tensor.*torch\.from_numpy\(lengths\)"),
    ("decoder-self-mask-list", lambda: at.decoder_self_mask([1, 2], 3), TorchTypeError, r"tgt_lengths"),
    ("gpt-numpy-idx", lambda: gpt_model(np.zeros((1, 3), np.int64)), TorchTypeError, r"torch\.from_numpy\(idx\)"),
    ("transformer-list-src", lambda: tr([[1, 2, 3]], lengths[:1], ids[:1]), TorchTypeError, r"src must be a torch"),
    ("transformer-numpy-lengths", lambda: tr.encode(ids, np.array([3, 2])), TorchTypeError, r"src_lengths"),
    ("seq2seq-numpy-src", lambda: seq2seq(ids.numpy(), lengths, ids), TorchTypeError, r"torch\.from_numpy\(src\)"),
    ("gru-encoder-list-lengths", lambda: gru_enc(ids, [3, 2]), TorchTypeError, r"lengths must be a 1-D integer"),
    ("rope-numpy", lambda: at.rope(np.zeros((3, 4))), TorchTypeError, r"x must be a torch.Tensor"),
    ("split-heads-numpy", lambda: at.split_heads(np.zeros((2, 3, 8)), 2), TorchTypeError, r"x must be a torch"),
    ("sample-next-numpy", lambda: at.sample_next(np.zeros((1, 5))), TorchTypeError, r"logits must be a torch"),
    ("cross-entropy-list-targets", lambda: at.sequence_cross_entropy(torch.randn(2, 3, 5), [[1, 2, 3]] * 2),
     TorchTypeError, r"targets must be a torch"),

    # ------------------------------------------------------------ masks: kind and shape
    ("sdpa-int-mask", lambda: at.scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 6, dtype=torch.long)),
     ValueError, r"mask must be boolean.*mask\.bool\(\)"),
    ("sdpa-additive-mask", lambda: at.scaled_dot_product_attention(q, k, v, mask=torch.zeros(5, 6)),
     ValueError, r"additive float mask.*mask == 0"),
    ("masked-softmax-2x4-for-2x5", lambda: at.masked_softmax(torch.randn(2, 5), torch.ones(2, 4, dtype=torch.bool)),
     ValueError, r"mask of shape \(2, 4\).*scores' shape \(2, 5\)"),
    ("masked-softmax-3-for-2x5", lambda: at.masked_softmax(torch.randn(2, 5), torch.ones(3, 1, dtype=torch.bool)),
     ValueError, r"mask of shape \(3, 1\).*\(2, 5\)"),
    ("masked-softmax-enlarges", lambda: at.masked_softmax(torch.randn(2, 5), torch.ones(3, 2, 5, dtype=torch.bool)),
     ValueError, r"mask of shape \(3, 2, 5\) would enlarge the scores' shape \(2, 5\)"),
    ("masked-softmax-float-mask", lambda: at.masked_softmax(torch.randn(2, 5), torch.ones(2, 5)),
     ValueError, r"mask must be boolean"),
    ("masked-softmax-int-scores", lambda: at.masked_softmax(torch.ones(2, 5, dtype=torch.long)), ValueError,
     r"scores must be floating point"),
    ("fully-masked-rows-int", lambda: at.fully_masked_rows(torch.ones(2, 2, dtype=torch.long)), ValueError,
     r"mask must be boolean"),
    ("merge-masks-float-padding", lambda: at.merge_masks(None, torch.ones(2, 3), 2, 3, 3), ValueError,
     r"padding_mask must be boolean"),
    ("decoder-layer-float-self-mask", lambda: dec_layer(x8, x8, self_mask=torch.zeros(3, 3)), ValueError,
     r"self_mask must be boolean"),
    ("decoder-layer-int-memory-mask", lambda: dec_layer(x8, x8, memory_mask=torch.ones(3, 3, dtype=torch.long)),
     ValueError, r"memory_mask must be boolean"),
    ("additive-attention-float-mask", lambda: additive(torch.randn(2, 6), torch.randn(2, 4, 6), torch.ones(2, 4)),
     ValueError, r"mask must be boolean"),
    ("crf-additive-mask", lambda: crf(torch.randn(2, 6), torch.randn(2, 4, 6), torch.zeros(2, 4)), ValueError,
     r"mask must be boolean.*additive"),
    ("crf-marginals-int-mask", lambda: at.crf_marginals(torch.randn(2, 4), torch.zeros(2, 2),
                                                        torch.ones(2, 4, dtype=torch.long)),
     ValueError, r"mask must be boolean"),
    ("transformer-decode-float-src-mask", lambda: tr.decode(ids, _memory()[0], _memory()[1].float()), ValueError,
     r"src_mask must be boolean"),
    ("segment-selection-float-span", lambda: hard_structured.segment_selection(
        torch.rand(2, 4), torch.ones(2, 4), torch.ones(2, 4, dtype=torch.bool)), ValueError, r"span must be boolean"),

    # ------------------------------------------------------------ token ids
    ("transformer-src-id-too-big", lambda: tr(torch.tensor([[1, 9, 3]]), lengths[:1], ids[:1]), ValueError,
     r"src must be token ids in \[0, 7\), got ids from 1 to 9"),
    ("transformer-src-negative", lambda: tr(torch.tensor([[1, -1, 3]]), lengths[:1], ids[:1]), ValueError,
     r"src must be token ids in \[0, 7\).*-1"),
    ("transformer-float-src", lambda: tr(ids.float(), lengths, ids), ValueError,
     r"src must hold integer token ids.*src\.long\(\)"),
    ("transformer-tgt-in-too-big", lambda: tr(ids, lengths, ids + 5), ValueError, r"tgt_in must be token ids in \[0, 7\)"),
    ("transformer-bool-tgt-in", lambda: tr(ids, lengths, ids > 1), ValueError, r"tgt_in must hold integer"),
    ("transformer-uint8-src", lambda: tr(ids.to(torch.uint8), lengths, ids), ValueError, r"src must hold integer.*torch.uint8"),
    ("transformer-1d-src", lambda: tr.encode(ids[0], lengths[:1]), ValueError, r"src must have shape \(B, L\)"),
    ("transformer-encode-negative", lambda: tr.encode(ids - 2, lengths), ValueError, r"src must be token ids"),
    ("transformer-decode-too-big", lambda: tr.decode(ids * 3, *_memory()), ValueError, r"tgt_in must be token ids"),
    ("transformer-greedy-float", lambda: tr.greedy(ids.double(), lengths), ValueError, r"src must hold integer"),
    ("transformer-greedy-too-big", lambda: tr.greedy(ids + 10, lengths), ValueError, r"src must be token ids"),
    ("beam-search-too-big", lambda: at.beam_search(tr, ids + 10, lengths, beam_size=2), ValueError,
     r"src must be token ids"),
    ("seq2seq-src-too-big", lambda: seq2seq(ids + 7, lengths, ids), ValueError, r"src must be token ids in \[0, 7\)"),
    ("seq2seq-tgt-negative", lambda: seq2seq(ids, lengths, ids - 3), ValueError, r"tgt_in must be token ids"),
    ("seq2seq-float-tgt", lambda: seq2seq(ids, lengths, ids.float()), ValueError, r"tgt_in must hold integer"),
    ("seq2seq-empty-tgt", lambda: seq2seq(ids, lengths, ids[:, :0]), ValueError, r"tgt_in must be \(B, T\) with T >= 1"),
    ("seq2seq-greedy-too-big", lambda: seq2seq.greedy(ids + 7, lengths), ValueError, r"src must be token ids"),
    ("seq2seq-encode-float", lambda: seq2seq.encode(ids.float(), lengths), ValueError, r"src must hold integer"),
    ("gru-encoder-too-big", lambda: gru_enc(ids * 3, lengths), ValueError, r"src must be token ids in \[0, 7\)"),
    ("gpt-id-too-big", lambda: gpt_model(torch.tensor([[1, 11]])), ValueError, r"idx must be token ids in \[0, 11\)"),
    ("gpt-negative", lambda: gpt_model(torch.tensor([[-1, 2]])), ValueError, r"idx must be token ids"),
    ("gpt-float", lambda: gpt_model(torch.zeros(1, 3)), ValueError, r"idx must hold integer.*idx\.long\(\)"),
    ("gpt-generate-too-big", lambda: gpt_model.generate(torch.tensor([[12]]), 2), ValueError, r"idx must be token ids"),
    ("tagger-too-big", lambda: tagger(ids + 7), ValueError, r"src must be token ids in \[0, 7\)"),
    ("label-smoothing-targets-too-big", lambda: at.label_smoothing_targets(torch.tensor([1, 9]), 5, 0.1),
     ValueError, r"target must be token ids in \[0, 5\)"),
    ("lm-loss-float-ids", lambda: at.lm_loss(gpt_model, (np.zeros((1, 3)) + 0.5, np.zeros((1, 3), int))),
     ValueError, r"batch x must hold integer token ids"),
    ("lm-loss-y-too-big", lambda: at.lm_loss(gpt_model, (np.zeros((1, 3), int), np.full((1, 3), 20))),
     ValueError, r"batch y must be token ids in \[0, 11\)"),
    ("lm-loss-not-a-pair", lambda: at.lm_loss(gpt_model, np.zeros((1, 3), int)), ValueError,
     r"batch must be a pair \(x, y\)"),
    ("cross-entropy-int32-targets", lambda: at.sequence_cross_entropy(torch.randn(2, 3, 5), ids.int()),
     ValueError, r"targets must hold token ids as torch.long.*targets\.long\(\)"),

    # ------------------------------------------------------------ counts, lengths and rates
    ("causal-mask-negative", lambda: at.causal_mask(-2), ValueError, r"L_q must be a non-negative integer"),
    ("causal-mask-float", lambda: at.causal_mask(3, 2.5), ValueError, r"L_k must be a non-negative integer"),
    ("padding-mask-float-max-len", lambda: at.padding_mask(lengths, 4.5), ValueError, r"max_len"),
    ("padding-mask-negative-max-len", lambda: at.padding_mask(lengths, -1), ValueError, r"max_len"),
    ("padding-mask-float-lengths", lambda: at.padding_mask(lengths.float(), 3), ValueError,
     r"lengths must be a 1-D integer tensor"),
    ("padding-mask-2d-lengths", lambda: at.padding_mask(lengths[None], 3), ValueError, r"lengths must be a 1-D"),
    ("sdpa-dropout-negative", lambda: at.scaled_dot_product_attention(q, k, v, dropout_p=-0.5), ValueError,
     r"dropout_p must be a number in \[0, 1\), got -0.5"),
    ("sdpa-dropout-one", lambda: at.scaled_dot_product_attention(q, k, v, dropout_p=1.0), ValueError, r"dropout_p"),
    ("sdpa-dropout-none", lambda: at.scaled_dot_product_attention(q, k, v, dropout_p=None), ValueError, r"dropout_p"),
    ("sdpa-dropout-string-fused", lambda: at.scaled_dot_product_attention(q, k, v, dropout_p="0.1",
                                                                         need_weights=False),
     ValueError, r"dropout_p"),
    ("mha-dropout-negative", lambda: at.MultiHeadAttention(8, 2, dropout=-0.5), ValueError, r"dropout must be a number"),
    ("mha-embed-dim-float", lambda: at.MultiHeadAttention(8.5, 2), ValueError, r"embed_dim must be a positive integer"),
    ("mha-num-heads-none", lambda: at.MultiHeadAttention(8, None), ValueError, r"num_heads must be a positive integer"),
    ("encoder-layer-dropout", lambda: at.EncoderLayer(8, 2, 16, dropout=-0.1), ValueError, r"dropout"),
    ("decoder-layer-dropout-one", lambda: at.DecoderLayer(8, 2, 16, dropout=1.0), ValueError, r"dropout"),
    ("encoder-layer-d-ff-zero", lambda: at.EncoderLayer(8, 2, 0), ValueError, r"d_ff must be a positive integer"),
    ("encoder-layer-eps-negative", lambda: at.EncoderLayer(8, 2, 16, layer_norm_eps=-1e-5), ValueError,
     r"layer_norm_eps must be positive"),
    ("stack-num-layers-float", lambda: at.TransformerEncoder(2.5, 8, 2, 16), ValueError,
     r"num_layers must be a positive integer"),
    ("ffn-dropout-negative", lambda: at.FeedForward(8, 16, dropout=-0.5), ValueError, r"dropout"),
    ("gpt-dropout-negative", lambda: at.GPT(11, 8, 16, 4, 1, dropout=-0.5), ValueError, r"dropout"),
    ("gpt-vocab-none", lambda: at.GPT(None, 8, 16, 4, 1), ValueError, r"vocab_size must be a positive integer"),
    ("gpt-heads-zero", lambda: at.GPT(11, 8, 16, 0, 1), ValueError, r"num_heads must be a positive integer"),
    ("gpt-d-ff-negative", lambda: at.GPT(11, 8, 16, 4, 1, d_ff=-4), ValueError, r"d_ff"),
    ("transformer-dropout", lambda: at.Transformer(7, 7, 8, 2, 16, dropout=-0.5), ValueError, r"dropout"),
    ("transformer-heads-zero", lambda: at.Transformer(7, 7, 8, 0, 16), ValueError, r"num_heads must be a positive"),
    ("transformer-eos-outside-vocab", lambda: at.Transformer(7, 2, 8, 2, 16), ValueError, r"eos_id=2"),
    ("beam-search-max-len-negative", lambda: at.beam_search(tr, ids, lengths, max_len=-1), ValueError, r"max_len"),
    ("beam-search-max-len-zero", lambda: at.beam_search(tr, ids, lengths, max_len=0), ValueError, r"max_len"),
    ("beam-search-max-len-float", lambda: at.beam_search(tr, ids, lengths, max_len=4.5), ValueError, r"max_len"),
    ("beam-search-beam-size-float", lambda: at.beam_search(tr, ids, lengths, beam_size=2.5), ValueError,
     r"beam_size must be a positive integer"),
    ("beam-search-beam-size-none", lambda: at.beam_search(tr, ids, lengths, beam_size=None), ValueError,
     r"beam_size"),
    ("beam-search-alpha-string", lambda: at.beam_search(tr, ids, lengths, alpha="1"), ValueError, r"alpha"),
    ("beam-step-beam-size-zero", lambda: at.beam_step(torch.zeros(1, 2), torch.zeros(1, 2, 3), 0), ValueError,
     r"beam_size"),
    ("length-penalty-alpha-none", lambda: at.length_penalty(3, None), ValueError, r"alpha must be a finite"),
    ("length-penalty-negative-length", lambda: at.length_penalty(-6, 1.0), ValueError, r"length must be >= 0"),
    ("length-penalty-negative-tensor", lambda: at.length_penalty(torch.tensor([2.0, -7.0]), 1.0), ValueError,
     r"length must be >= 0"),
    ("transformer-greedy-max-len-zero", lambda: tr.greedy(ids, lengths, 0), ValueError, r"max_len"),
    ("transformer-greedy-max-len-float", lambda: tr.greedy(ids, lengths, 4.5), ValueError, r"max_len"),
    ("seq2seq-greedy-max-len-negative", lambda: seq2seq.greedy(ids, lengths, -3), ValueError, r"max_len"),
    ("greedy-decode-batch-negative", lambda: at.greedy_decode(lambda y: (torch.zeros(len(y), 3), None), -1, 1, 2, 0, 3),
     ValueError, r"batch_size"),
    ("greedy-decode-step-not-callable", lambda: at.greedy_decode(None, 2, 1, 2, 0, 3), TypeError, r"step must be"),
    ("kv-cache-max-len-negative", lambda: at.KVCache(2, 1, 2, -4, 8), ValueError, r"max_len must be a positive"),
    ("kv-cache-layers-float", lambda: at.KVCache(1.5, 1, 2, 4, 8), ValueError, r"num_layers"),
    ("kv-cache-batch-zero", lambda: at.LayerKVCache(0, 2, 4, 8), ValueError, r"batch must be a positive integer"),
    ("kv-cache-int-dtype", lambda: at.LayerKVCache(1, 2, 4, 8, dtype=torch.long), ValueError,
     r"dtype must be a floating-point"),
    ("kv-cache-bytes-negative", lambda: at.kv_cache_bytes(2, 64, -10), ValueError, r"length"),
    ("gpt-new-cache-negative", lambda: gpt_model.new_cache(1, -5), ValueError, r"max_len"),
    ("gpt-generate-negative", lambda: gpt_model.generate(torch.zeros(1, 2, dtype=torch.long), -1), ValueError,
     r"max_new_tokens must be a non-negative integer"),
    ("gpt-generate-float", lambda: gpt_model.generate(torch.zeros(1, 2, dtype=torch.long), 4.5), ValueError,
     r"max_new_tokens"),
    ("gpt-generate-none", lambda: gpt_model.generate(torch.zeros(1, 2, dtype=torch.long), None), ValueError,
     r"max_new_tokens"),
    ("gpt-generate-temperature-none", lambda: gpt_model.generate(torch.zeros(1, 2, dtype=torch.long), 2,
                                                                 temperature=None), ValueError, r"temperature"),
    ("gpt-generate-top-k-float", lambda: gpt_model.generate(torch.zeros(1, 2, dtype=torch.long), 2, top_k=2.5),
     ValueError, r"top_k must be a positive integer"),
    ("gpt-generate-seed-as-generator", lambda: gpt_model.generate(torch.zeros(1, 2, dtype=torch.long), 2,
                                                                  generator=0), TypeError, r"generator"),
    ("gpt-wrong-cache", lambda: gpt_model(torch.zeros(1, 2, dtype=torch.long), cache=object()), TypeError,
     r"cache must be a KVCache"),
    ("train-steps-float", lambda: at.train(gpt_model, [1], lambda m, b: 0, _sgd(gpt_model), steps=2.5,
                                           progress=False), ValueError, r"steps must be a positive integer"),
    ("train-steps-negative", lambda: at.train(gpt_model, [1], lambda m, b: 0, _sgd(gpt_model), steps=-3,
                                              progress=False), ValueError, r"steps"),
    ("train-epochs-zero", lambda: at.train(gpt_model, [1], lambda m, b: 0, _sgd(gpt_model), epochs=0,
                                           progress=False), ValueError, r"epochs"),
    ("train-eval-every-negative", lambda: at.train(gpt_model, [1], lambda m, b: 0, _sgd(gpt_model), steps=2,
                                                   eval_every=-5, progress=False), ValueError, r"eval_every"),
    ("train-clip-negative", lambda: at.train(gpt_model, [1], lambda m, b: 0, _sgd(gpt_model), steps=2, clip=-1,
                                             progress=False), ValueError, r"clip must be positive"),
    ("train-no-optimizer", lambda: at.train(gpt_model, [1], lambda m, b: 0, 0.1, steps=2, progress=False),
     TypeError, r"optimizer must be a torch.optim.Optimizer"),
    ("cross-entropy-smoothing-negative", lambda: at.sequence_cross_entropy(torch.randn(2, 3, 5), ids, 0, -0.5),
     ValueError, r"label_smoothing must be a number in \[0, 1\]"),
    ("label-smoothing-epsilon", lambda: at.label_smoothing_targets(ids[0], 5, 1.5), ValueError, r"epsilon"),
    ("evaluate-lm-loss-num-blocks-zero", lambda: at.evaluate_lm_loss(gpt_model, np.arange(50) % 11, 4, 0),
     ValueError, r"num_blocks must be a positive integer"),
    ("evaluate-lm-loss-block-size-float", lambda: at.evaluate_lm_loss(gpt_model, np.arange(50) % 11, 4.5),
     ValueError, r"block_size"),
    ("warmup-schedule-float", lambda: at.warmup_schedule(_sgd(gpt_model), 2.5), ValueError, r"warmup_steps"),
    ("noam-rate-warmup-float", lambda: at.noam_rate(5, 64, 2.5), ValueError, r"warmup_steps must be a positive"),
    ("noam-rate-step-zero", lambda: at.noam_rate(0, 64, 10), ValueError, r"step counts from 1"),
    ("warmup-linear-decay-negative", lambda: at.warmup_linear_decay(_sgd(gpt_model), -1, 10), ValueError,
     r"warmup_steps"),
    ("alibi-slopes-float", lambda: at.alibi_slopes(2.5), ValueError, r"num_heads must be a positive integer"),
    ("alibi-bias-float-length", lambda: at.alibi_bias(2, 4.5), ValueError, r"L_q must be a positive integer"),
    ("alibi-bias-negative-offset", lambda: at.alibi_bias(2, 4, 6, q_offset=-1), ValueError, r"q_offset"),
    ("rope-angles-odd", lambda: at.rope_angles(torch.arange(3), 5), ValueError, r"even"),
    ("rope-angles-base", lambda: at.rope_angles(torch.arange(3), 4, base=-2.0), ValueError, r"base must be positive"),
    ("local-window-negative", lambda: at.LocalMonotonicAttention(6, 6, -2), ValueError, r"window"),
    ("gaussian-window-zero-d", lambda: at.gaussian_window(torch.zeros(2), 5, 0.0), ValueError, r"D must be positive"),
    ("gru-encoder-dropout", lambda: at.GRUEncoder(7, 4, 6, dropout=-0.2), ValueError, r"dropout"),
    ("gru-decoder-vocab-zero", lambda: at.GRUDecoder(0, 4, 6, 6), ValueError, r"vocab_size must be a positive"),
    ("additive-hidden-zero", lambda: at.AdditiveAttention(6, 6, 0), ValueError, r"hidden_size must be a positive"),
    ("moving-average-momentum", lambda: at.MovingAverageBaseline(-0.1), ValueError, r"momentum"),
    ("predict-batch-size-zero", lambda: at.predict(tr, None, [], batch_size=0), ValueError, r"batch_size"),

    # ------------------------------------------------------------ logits of the samplers
    ("sample-next-1d", lambda: at.sample_next(torch.randn(7)), ValueError,
     r"logits must have shape \(B, vocab_size\), got shape \(7,\).*logits\[None\]"),
    ("sample-next-1d-greedy", lambda: at.sample_next(torch.randn(7), temperature=0), ValueError,
     r"\(B, vocab_size\)"),
    ("sample-next-3d", lambda: at.sample_next(torch.randn(2, 3, 7)), ValueError, r"\(B, vocab_size\).*\(2, 3, 7\)"),
    ("sample-next-int-logits", lambda: at.sample_next(torch.ones(2, 7, dtype=torch.long)), ValueError,
     r"logits must be floating point"),
    ("next-token-probs-0d", lambda: at.next_token_probs(torch.tensor(1.0)), ValueError, r"\(\.\.\., vocab_size\)"),
    ("next-token-probs-empty-vocab", lambda: at.next_token_probs(torch.zeros(2, 0)), ValueError, r"vocab_size >= 1"),
    ("next-token-probs-temperature-nan", lambda: at.next_token_probs(torch.zeros(2, 3), float("nan")), ValueError,
     r"temperature"),
    ("next-token-probs-top-k-zero", lambda: at.next_token_probs(torch.zeros(2, 3), 1.0, 0), ValueError, r"top_k"),

    # ------------------------------------------------------------ shapes at other entrances
    ("attention-context-1d", lambda: at.attention_context(torch.rand(4), torch.randn(2, 4, 3)), ValueError,
     r"weights \(4,\) must be \(B, L\)"),
    ("transformer-decode-shapes", lambda: tr.decode(ids, _memory()[0][:, :2], _memory()[1]), ValueError,
     r"memory must be \(B, S, d_model\), src_mask \(B, S\)"),
    ("transformer-lengths-batch", lambda: tr.encode(ids, lengths[:1]), ValueError, r"src_lengths must have shape \(B,\)"),
    ("gpt-block-shape", lambda: gpt_model.blocks[0](torch.randn(3, 16)), ValueError, r"\(B, T, d_model=16\)"),
    ("reinforce-float-rewards-shape", lambda: at.reinforce_loss(torch.zeros(3), torch.zeros(4)), ValueError, r"rewards"),
    ("gradient-variance-one-draw", lambda: hard_structured.gradient_variance(torch.zeros(1, 5)), ValueError,
     r"n_draws >= 2"),

    # ------------------------------------------------------------ files
    ("load-checkpoint-missing", lambda: at.load_checkpoint(gpt_model, "/nonexistent/model.safetensors"),
     ValueError, r"does not exist"),
    ("load-checkpoint-not-a-path", lambda: at.load_checkpoint(gpt_model, None), TypeError,
     r"path must be a str or pathlib.Path"),
    ("save-checkpoint-metadata-list", lambda: at.save_checkpoint(gpt_model, "/tmp/x.safetensors", metadata=[1]),
     TypeError, r"metadata must be a dict"),
    ("load-checkpoint-not-a-model", lambda: at.load_checkpoint({}, "x.safetensors"), TypeError,
     r"model must be a torch.nn.Module"),

    # ------------------------------------------------------------ the chapters' experiments
    ("length-bins-float-width", lambda: bottleneck.length_bins(3, 10, 2.5), ValueError,
     r"width must be a positive integer"),
    ("length-bins-negative-lo", lambda: bottleneck.length_bins(-3, 10, 2), ValueError, r"lo must be a non-negative"),
    ("best-time-repeats-zero", lambda: numpy_to_torch.best_time(lambda: None, 0), ValueError, r"repeats"),
    ("best-time-not-callable", lambda: numpy_to_torch.best_time(3), TypeError, r"fn must be a function"),
    ("numerical-gradient-eps", lambda: numpy_to_torch.numerical_gradient(np.sum, np.zeros(3), eps=0), ValueError,
     r"eps must be positive"),
    ("attention-path-times-length", lambda: numpy_to_torch.attention_path_times([16, -8], progress=False),
     ValueError, r"each of lengths"),
    ("kv-cache-speedup-zero-tokens", lambda: gpt.kv_cache_speedup(gpt_model, new_tokens=0), ValueError,
     r"new_tokens"),
    ("train-language-model-steps", lambda: gpt.train_language_model(gpt_model, None, steps=-1), ValueError,
     r"steps"),
    ("context-length-losses-length", lambda: gpt.context_length_losses({}, np.arange(10), [8, 4.5]), ValueError,
     r"each of lengths"),
    ("gradient-norms-batch", lambda: transformer_block.gradient_norms_by_depth(2, 8, 2, 16, batch=0), ValueError,
     r"batch must be a positive"),
    ("activation-stats-float64", lambda: transformer_block.activation_stats(enc_stack, x8.double()), ValueError,
     r"x is torch.float64"),
    ("lookup-model-dim-zero", lambda: hard_structured.LookupModel(5, 3, dim=0), ValueError, r"dim"),
    ("attention-gradients-draws", lambda: hard_structured.attention_gradients(
        hard_structured.LookupModel(5, 3), None, n_draws=0), ValueError, r"n_draws"),
]


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_misuse_is_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_the_case_ids_are_unique():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


# ---------------------------------------------------------------- files, made on disk

def _bad_files(tmp_path):
    good = tmp_path / "good.safetensors"
    at.save_checkpoint(gpt_model, good)
    data = good.read_bytes()
    files = {}
    files["torch-save-zip"] = tmp_path / "zip.pt"
    torch.save(gpt_model.state_dict(), files["torch-save-zip"])
    files["torch-save-legacy-pickle"] = tmp_path / "legacy.pt"
    torch.save(gpt_model.state_dict(), files["torch-save-legacy-pickle"], _use_new_zipfile_serialization=False)
    files["empty"] = tmp_path / "empty.safetensors"
    files["empty"].write_bytes(b"")
    files["four-bytes"] = tmp_path / "four.safetensors"
    files["four-bytes"].write_bytes(data[:4])
    files["truncated-data"] = tmp_path / "half.safetensors"
    files["truncated-data"].write_bytes(data[: len(data) // 2])
    files["truncated-header"] = tmp_path / "header.safetensors"
    files["truncated-header"].write_bytes(data[:40])
    files["text"] = tmp_path / "notes.txt"
    files["text"].write_text("these are not tensors, just some notes about the model\n")
    files["directory"] = tmp_path / "a_directory"
    files["directory"].mkdir()
    return files


FILE_CASES = {
    "torch-save-zip": r"torch\.save pickle.*save_checkpoint",
    "torch-save-legacy-pickle": r"torch\.save pickle.*save_checkpoint",
    "empty": r"is empty \(0 bytes\), not a safetensors file.*save_checkpoint",
    "four-bytes": r"truncated \(4 bytes\), not a safetensors file",
    "truncated-data": r"truncated",
    "truncated-header": r"not a safetensors file, or it is truncated",
    "text": r"not a safetensors file",
    "directory": r"is a directory, not a safetensors file",
}


@pytest.mark.parametrize("kind", list(FILE_CASES))
def test_load_checkpoint_names_what_the_file_is_not(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ValueError, match=FILE_CASES[kind]):
        at.load_checkpoint(gpt_model, path)


def test_save_checkpoint_into_a_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is a directory: give a file name"):
        at.save_checkpoint(gpt_model, tmp_path)


def test_number_of_misuse_cases():
    """The closing note of the issue counts these (keep it in step when adding cases)."""
    assert len(CASES) + len(FILE_CASES) + 1 >= 213


# ---------------------------------------------------------------- valid input still works

def test_torch_type_error_is_both_kinds():
    assert issubclass(TorchTypeError, TypeError) and issubclass(TorchTypeError, ValueError)


def test_sdpa_valid_inputs_unchanged():
    mask = torch.rand(2, 5, 6) > 0.3
    out, w = at.scaled_dot_product_attention(q, k, v, mask=mask, dropout_p=0)
    scores = (q @ k.transpose(-2, -1) / 2.0).masked_fill(~mask, float("-inf"))
    ref = torch.softmax(scores, -1).nan_to_num(0.0)
    torch.testing.assert_close(w, ref)
    torch.testing.assert_close(out, ref @ v)
    fused, none = at.scaled_dot_product_attention(q, k, v, mask=mask, need_weights=False)
    assert none is None
    torch.testing.assert_close(fused, out, atol=1e-5, rtol=1e-5)
    out64, _ = at.scaled_dot_product_attention(q.double(), k.double(), v.double(), bias=torch.zeros(5, 6))
    assert out64.dtype == F64  # a float32 bias still joins float64 scores


def test_modules_in_float64_take_float64_inputs():
    m = at.MultiHeadAttention(8, 2).double()
    out, w = m(x8.double(), x8.double(), x8.double(), mask=at.causal_mask(3))
    assert out.dtype == F64 and w.shape == (2, 2, 3, 3)
    layer = at.EncoderLayer(8, 2, 16, dtype=F64)
    assert layer(x8.double(), padding_mask=at.padding_mask(lengths, 3)).dtype == F64


def test_masked_softmax_broadcasting_masks_still_work():
    scores = torch.randn(2, 3, 5)
    for mask in (torch.ones(5, dtype=torch.bool), torch.rand(2, 1, 5) > 0.5, torch.rand(3, 5) > 0.5):
        w = at.masked_softmax(scores, mask)
        assert w.shape == scores.shape
        assert torch.all(w[~mask.expand_as(scores)] == 0)


def test_ids_of_every_integer_width_an_embedding_reads():
    for dtype in (torch.int64, torch.int32):
        assert tr(ids.to(dtype), lengths, ids.to(dtype)).shape == (2, 3, 7)
        assert gpt_model(ids.to(dtype)).shape == (2, 3, 11)
    assert seq2seq(ids, lengths, ids).shape == (2, 3, 7)
    tokens, _ = tr.greedy(ids, lengths, 4)
    assert tokens.shape[1] <= 4
    assert at.beam_search(tr, ids, lengths, beam_size=2, max_len=3).tokens.shape[0] == 2


def test_counts_given_as_whole_floats_or_numpy_ints_are_accepted():
    prompt = torch.zeros(1, 2, dtype=torch.long)
    assert torch.equal(gpt_model.generate(prompt, 0), prompt)
    assert gpt_model.generate(prompt, np.int64(3), temperature=0).shape == (1, 5)
    assert at.causal_mask(3.0).shape == (3, 3)
    assert at.KVCache(np.int64(1), 1, 2, 4.0, 8).max_len == 4
    assert at.padding_mask(lengths, np.int64(4)).shape == (2, 4)


def test_samplers_keep_their_shapes():
    assert at.next_token_probs(torch.randn(7)).shape == (7,)  # (..., V): 1-D stays allowed here
    assert at.next_token_probs(torch.randn(2, 3, 7), 0.5, 2).shape == (2, 3, 7)
    assert at.sample_next(torch.randn(2, 7), 0).shape == (2,)
    g = torch.Generator().manual_seed(0)
    assert at.sample_next(torch.randn(2, 7), 1.0, 3, generator=g).shape == (2,)


def test_length_penalty_takes_numbers_arrays_and_tensors():
    assert at.length_penalty(1, 0.0) == 1.0
    assert np.allclose(at.length_penalty(np.array([1, 7]), 1.0), [1.0, 2.0])
    assert torch.allclose(at.length_penalty(torch.tensor([1.0, 7.0]), 1.0), torch.tensor([1.0, 2.0]))


def test_checkpoint_round_trip_still_works(tmp_path):
    at.save_checkpoint(gpt_model, tmp_path / "m.safetensors", {"note": "ok"})
    other = at.GPT(11, 8, 16, 4, 1)
    assert at.load_checkpoint(other, tmp_path / "m.safetensors") == {"note": "ok"}
    assert torch.equal(other.tok_emb.weight, gpt_model.tok_emb.weight)


def test_rope_positions_as_int_list_or_tensor():
    x = torch.randn(3, 4, dtype=F64)
    a, b, c = at.rope(x, 2), at.rope(x, [2, 3, 4]), at.rope(x, torch.arange(2, 5))
    assert torch.equal(a, b) and torch.equal(a, c)
