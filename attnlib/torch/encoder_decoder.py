r"""The full encoder-decoder Transformer (Vaswani et al., 2017), usable with Part II's tools.

Source tokens are embedded, scaled by :math:`\sqrt{d_\text{model}}` and added to sinusoidal
positions; a :class:`~attnlib.torch.TransformerEncoder` turns them into the *memory*. Target
tokens (``<bos>`` + target) go the same way into a :class:`~attnlib.torch.TransformerDecoder`
whose layers attend causally to the target so far and, through cross-attention, to the memory;
a linear layer (optionally tied to the target embedding) gives the logits:

.. math::

    M = \mathrm{Enc}\big(\sqrt{d}\, E_s[x] + P\big), \qquad
    \mathrm{logits} = \mathrm{Dec}\big(\sqrt{d}\, E_t[y_{<t}] + P,\; M\big)\, W_o^\top + b_o .

:class:`Transformer` has the call pattern of :class:`~attnlib.torch.Seq2Seq`
(``forward(src, src_lengths, tgt_in)``, ``greedy(src, src_lengths, max_len)``, ``pad_id``,
``bos_id``, ``eos_id``), so :func:`~attnlib.torch.seq2seq_loss`, :func:`~attnlib.torch.predict`,
:func:`~attnlib.torch.evaluate_exact_match` and :func:`~attnlib.torch.train` work unchanged.
Greedy decoding re-runs the decoder over the whole prefix at every step (the KV cache that
avoids this is the next chapter's topic), for a whole batch at once.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attnlib.numpy.positional import sinusoidal_positional_encoding
from attnlib.torch.transformer import TransformerDecoder, TransformerEncoder

__all__ = ["Transformer", "noam_rate", "noam_schedule", "attention_maps", "padding_mask",
           "decoder_self_mask", "train_transformer", "label_smoothing_targets", "DATE_RECIPE",
           "shared_vocabulary_map", "warmup_linear_decay"]


def padding_mask(lengths: torch.Tensor, L: int) -> torch.Tensor:
    """Boolean (B, L) mask, True on the first ``lengths[b]`` positions of row b (the real tokens).

    Parameters
    ----------
    lengths : torch.LongTensor, shape (B,)
    L : int
        Padded length.

    Returns
    -------
    torch.Tensor of bool, shape (B, L)
    """
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1:
        raise ValueError(f"lengths must be a 1-D tensor (B,), got {getattr(lengths, 'shape', lengths)}")
    if len(lengths) and int(lengths.max()) > L:
        raise ValueError(f"a length {int(lengths.max())} exceeds the padded length L={L}")
    return torch.arange(L, device=lengths.device)[None, :] < lengths[:, None]


def decoder_self_mask(tgt_lengths: torch.Tensor, T: int) -> torch.Tensor:
    """The decoder's self-attention mask: causal and padding combined, True = may attend.

    Query t of example b may attend to key j when ``j <= t`` (no peeking at the future) and
    ``j < tgt_lengths[b]`` (no padding).

    Parameters
    ----------
    tgt_lengths : torch.LongTensor, shape (B,)
    T : int
        Padded target length.

    Returns
    -------
    torch.Tensor of bool, shape (B, T, T)
    """
    causal = torch.ones(T, T, dtype=torch.bool, device=tgt_lengths.device).tril()
    return causal[None] & padding_mask(tgt_lengths, T)[:, None, :]


def shared_vocabulary_map(source_vocab, target_vocab) -> list:
    """For each target token id, the id of the same symbol in the source vocabulary.

    Parameters
    ----------
    source_vocab, target_vocab : attnlib.data.Vocab

    Returns
    -------
    list of int
        ``len(target_vocab)`` source ids (the specials map to themselves).

    Raises
    ------
    ValueError
        When a target symbol is not in the source vocabulary.
    """
    missing = [s for s in target_vocab.itos if s not in source_vocab.stoi]
    if missing:
        raise ValueError(f"target symbols {missing} are not in the source vocabulary")
    return [source_vocab.stoi[s] for s in target_vocab.itos]


def noam_rate(step, d_model: int, warmup_steps: int, factor: float = 1.0):
    r"""The learning rate of the original Transformer ("Noam") schedule at ``step`` (1-based).

    .. math:: \text{lr}(s) = f \cdot d_\text{model}^{-1/2}\, \min\big(s^{-1/2},\; s \cdot w^{-3/2}\big)

    It rises linearly for ``w = warmup_steps`` steps, peaks at :math:`f / \sqrt{d_\text{model} w}`
    and then decays like :math:`1/\sqrt{s}`.

    Parameters
    ----------
    step : int or numpy.ndarray of int
        Steps, counting from 1.
    d_model : int
    warmup_steps : int
    factor : float

    Returns
    -------
    float or numpy.ndarray of float
    """
    if warmup_steps < 1 or d_model < 1:
        raise ValueError(f"d_model and warmup_steps must be positive, got {d_model}, {warmup_steps}")
    s = np.asarray(step, dtype=np.float64)
    if np.any(s < 1):
        raise ValueError("steps count from 1")
    out = factor * d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup_steps ** -1.5)
    return float(out) if out.ndim == 0 else out


def noam_schedule(optimizer: torch.optim.Optimizer, d_model: int, warmup_steps: int,
                  factor: float = 1.0):
    """A ``LambdaLR`` that sets the learning rate to :func:`noam_rate` (the optimizer's own lr is ignored).

    Step ``s`` of the scheduler (from 0) uses ``noam_rate(s + 1, ...)``.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    d_model, warmup_steps : int
    factor : float

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
    """
    noam_rate(1, d_model, warmup_steps)  # validates
    for group in optimizer.param_groups:
        group["lr"] = 1.0
        group["initial_lr"] = 1.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: noam_rate(s + 1, d_model, warmup_steps, factor))


def warmup_linear_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    r"""A ``LambdaLR``: linear warm-up to the optimizer's rate, then linear decay to 0 at ``total_steps``.

    The factor at scheduler step :math:`s` (from 0, the rate of update :math:`s + 1`) is
    :math:`\min\big((s + 1) / w,\; (T - s) / (T - w)\big)` with :math:`w` = ``warmup_steps``
    and :math:`T` = ``total_steps``: a fixed-length run ends at a small learning rate, so its
    final model does not depend on where a large step happened to land.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    warmup_steps, total_steps : int
        ``0 <= warmup_steps < total_steps``.

    Returns
    -------
    torch.optim.lr_scheduler.LambdaLR
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps}, {total_steps}")
    w, T = warmup_steps, total_steps
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: max(0.0, min((s + 1) / max(w, 1), (T - s) / (T - w))))


def label_smoothing_targets(target: torch.Tensor, vocab_size: int, epsilon: float) -> torch.Tensor:
    r"""The smoothed target distribution of ``cross_entropy(..., label_smoothing=epsilon)``.

    :math:`q = (1 - \varepsilon)\,\text{onehot}(y) + \varepsilon / V`: the right token keeps
    :math:`1 - \varepsilon + \varepsilon/V`, every other token gets :math:`\varepsilon / V`.

    Parameters
    ----------
    target : torch.LongTensor, shape (N,)
    vocab_size : int
    epsilon : float
        In [0, 1].

    Returns
    -------
    torch.Tensor, shape (N, vocab_size), float32; rows sum to 1
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    onehot = torch.nn.functional.one_hot(target, vocab_size).float()
    return (1.0 - epsilon) * onehot + epsilon / vocab_size


class Transformer(nn.Module):
    """The encoder-decoder Transformer for sequence-to-sequence tasks.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int
    d_model : int
        Width of the residual stream (embeddings, attention, outputs).
    num_heads : int
        Must divide ``d_model``.
    d_ff : int
        Hidden width of the feed-forward networks.
    num_encoder_layers, num_decoder_layers : int
    dropout : float
        On the embeddings-plus-positions and inside every layer.
    norm_first : bool
        Pre-LN layers (True) or the original post-LN (False).
    max_len : int
        Longest source or target sequence (rows of the position table).
    tie_embeddings : bool
        Share the target embedding matrix with the output projection.
    tgt_to_src : sequence of int, optional
        Share one embedding matrix between source and target (Vaswani et al.'s shared
        vocabulary): target token ``i`` uses the source embedding row ``tgt_to_src[i]`` (build it
        with :func:`shared_vocabulary_map`). Implies ``tie_embeddings``; ``tgt_embed`` is then None.
    pad_id, bos_id, eos_id : int
        Specials (0, 1, 2 in :mod:`attnlib.data.translation`).

    Attributes
    ----------
    src_embed, tgt_embed : torch.nn.Embedding
        (``tgt_embed`` is None when ``tgt_to_src`` is given.)
    positions : torch.Tensor, shape (max_len, d_model)
        Sinusoidal table from :func:`attnlib.numpy.sinusoidal_positional_encoding` (a buffer,
        not saved in checkpoints).
    encoder : TransformerEncoder
    decoder : TransformerDecoder
    out : torch.nn.Linear
        ``d_model -> tgt_vocab_size``.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64,
                 num_heads: int = 4, d_ff: int = 256, num_encoder_layers: int = 2,
                 num_decoder_layers: int = 2, dropout: float = 0.1, norm_first: bool = False,
                 max_len: int = 256, tie_embeddings: bool = True, tgt_to_src=None, pad_id: int = 0,
                 bos_id: int = 1, eos_id: int = 2):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.max_len = int(d_model), int(max_len)
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        if tgt_to_src is not None:
            index = torch.as_tensor(list(tgt_to_src), dtype=torch.long)
            if index.shape != (tgt_vocab_size,) or int(index.min()) < 0 or int(index.max()) >= src_vocab_size:
                raise ValueError(f"tgt_to_src must hold {tgt_vocab_size} source ids in [0, "
                                 f"{src_vocab_size}), got shape {tuple(index.shape)}")
            self.register_buffer("tgt_to_src", index, persistent=False)
            self.tgt_embed = None
            tie_embeddings = True
        else:
            self.tgt_to_src = None
        for emb in (e for e in (self.src_embed, self.tgt_embed) if e is not None):
            # N(0, 1/d): after the sqrt(d) scaling, entries of size about 1, like the positions.
            nn.init.normal_(emb.weight, std=d_model ** -0.5)
            with torch.no_grad():
                emb.weight[pad_id].zero_()
        table = torch.from_numpy(np.asarray(sinusoidal_positional_encoding(max_len, d_model),
                                            dtype=np.float32))
        self.register_buffer("positions", table, persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.encoder = TransformerEncoder(num_encoder_layers, d_model, num_heads, d_ff, dropout,
                                          norm_first)
        self.decoder = TransformerDecoder(num_decoder_layers, d_model, num_heads, d_ff, dropout,
                                          norm_first)
        self.out = nn.Linear(d_model, tgt_vocab_size)
        if self.tgt_to_src is not None:
            del self.out.weight              # the output uses the shared embedding: only a bias
            self.out.weight = None
        elif tie_embeddings:
            self.out.weight = self.tgt_embed.weight
        self.tie_embeddings = bool(tie_embeddings)

    def _target_matrix(self) -> torch.Tensor:
        """The (V_tgt, d_model) target embedding (rows of the source one when shared)."""
        if self.tgt_to_src is not None:
            return self.src_embed.weight[self.tgt_to_src]
        return self.tgt_embed.weight

    def _embed(self, weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError(f"token ids must have shape (B, L), got shape {tuple(ids.shape)}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence length {ids.shape[1]} exceeds max_len={self.max_len}")
        return self.dropout(F.embedding(ids, weight) * math.sqrt(self.d_model)
                            + self.positions[:ids.shape[1]])

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        weight = self._target_matrix() if self.tgt_to_src is not None else self.out.weight
        return F.linear(h, weight, self.out.bias)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor, need_weights: bool = False):
        """Run the encoder.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, S)
        src_lengths : torch.LongTensor, shape (B,)
        need_weights : bool
            Also return the encoder's self-attention weights.

        Returns
        -------
        memory : torch.Tensor, shape (B, S, d_model)
        src_mask : torch.Tensor of bool, shape (B, S)
            True on real source tokens.
        (weights) : list of dict
            Only when ``need_weights``: per layer ``{"self": (B, H, S, S)}``.
        """
        if src_lengths.shape != src.shape[:1]:
            raise ValueError(f"src_lengths must have shape (B,) = ({src.shape[0]},), got "
                             f"{tuple(src_lengths.shape)} (src {tuple(src.shape)})")
        src_mask = padding_mask(src_lengths.to(src.device), src.shape[1])
        out = self.encoder(self._embed(self.src_embed.weight, src), padding_mask=src_mask,
                           need_weights=need_weights)
        if need_weights:
            return out[0], src_mask, out[1]
        return out, src_mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor,
               need_weights: bool = False):
        """Logits for every target position, given the memory.

        Parameters
        ----------
        tgt_in : torch.LongTensor, shape (B, T)
            ``<bos>`` followed by the target so far.
        memory : torch.Tensor, shape (B, S, d_model)
        src_mask : torch.Tensor of bool, shape (B, S)
        need_weights : bool
            Also return the decoder's weights: per layer ``{"self": (B, H, T, T), "cross": (B, H, T, S)}``.

        Returns
        -------
        torch.Tensor, shape (B, T, V)
            (and the list of weights when ``need_weights``).

        Notes
        -----
        Target padding needs no mask of its own: padding sits after the real tokens, and the
        causal mask already stops every real position from seeing anything after it.
        """
        out = self.decoder(self._embed(self._target_matrix(), tgt_in), memory, causal=True,
                           memory_padding_mask=src_mask, need_weights=need_weights)
        if need_weights:
            return self._logits(out[0]), out[1]
        return self._logits(out)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                return_weights: bool = False):
        """Teacher-forced logits, as :meth:`attnlib.torch.Seq2Seq.forward`.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, S)
        src_lengths : torch.LongTensor, shape (B,)
        tgt_in : torch.LongTensor, shape (B, T)
        return_weights : bool
            Also return the cross-attention weights of the last layer, averaged over heads,
            shape (B, T, S).

        Returns
        -------
        torch.Tensor, shape (B, T, V)
        """
        if tgt_in.dim() != 2 or tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"tgt_in must be (B, T) with B={src.shape[0]}, got {tuple(tgt_in.shape)}")
        memory, src_mask = self.encode(src, src_lengths)
        if not return_weights:
            return self.decode(tgt_in, memory, src_mask)
        logits, w = self.decode(tgt_in, memory, src_mask, need_weights=True)
        return logits, w[-1]["cross"].mean(dim=1)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int | None = None):
        """Greedy decoding for a whole batch, re-running the decoder over the prefix each step.

        Parameters
        ----------
        src : torch.LongTensor, shape (B, S)
        src_lengths : torch.LongTensor, shape (B,)
        max_len : int, optional
            Most tokens to emit (``<eos>`` included); default ``S + 10``.

        Returns
        -------
        tokens : torch.LongTensor, shape (B, T)
            Emitted ids, ``<eos>`` included, ``<pad>`` after it; decoding stops when every
            row has emitted ``<eos>``.
        weights : None
            (the place of :meth:`attnlib.torch.Seq2Seq.greedy`'s weights; see
            :func:`attention_maps` for every attention map).
        """
        max_len = src.shape[1] + 10 if max_len is None else int(max_len)
        memory, src_mask = self.encode(src, src_lengths)
        B = src.shape[0]
        ys = torch.full((B, 1), self.bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        tokens = []
        for _ in range(max_len):
            y = self.decode(ys, memory, src_mask)[:, -1].argmax(dim=-1)
            tokens.append(torch.where(done, torch.full_like(y, self.pad_id), y))
            done = done | (y == self.eos_id)
            if bool(done.all()):
                break
            ys = torch.cat([ys, y[:, None]], dim=1)
        return torch.stack(tokens, dim=1), None


@torch.no_grad()
def attention_maps(model: Transformer, task, pair, target: str | None = None) -> dict:
    """Every attention map of ``model`` on one example: encoder self, decoder self and cross.

    The decoder reads ``<bos>`` + ``target``; by default the model's own greedy translation.

    Parameters
    ----------
    model : Transformer
    task : attnlib.data.TranslationTask
    pair : attnlib.data.Pair
    target : str, optional
        The target text to feed (default: the model's greedy prediction).

    Returns
    -------
    dict
        ``"encoder"``: numpy array (layers, H, S, S); ``"decoder"``: (layers, H, T, T);
        ``"cross"``: (layers, H, T, S); ``"source"``: list of S source tokens; ``"target"``:
        list of T output tokens (the target then ``<eos>``), each query row of the decoder maps
        produces the token of the same index; ``"input"``: the T decoder input tokens.
    """
    from attnlib.torch.decoders import predict

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if target is None:
        target = predict(model, task, [pair], device=device)[0]
    batch = task.encode_batch([type(pair)(pair.source, target, pair.kind)], device)
    memory, src_mask, enc_w = model.encode(batch.src, batch.src_lengths, need_weights=True)
    _, dec_w = model.decode(batch.tgt_in, memory, src_mask, need_weights=True)
    model.train(was_training)
    stack = lambda ws, k: torch.stack([w[k][0] for w in ws]).cpu().numpy()  # noqa: E731
    out_tokens = list(target) + ["<eos>"]
    return {"encoder": stack(enc_w, "self"), "decoder": stack(dec_w, "self"),
            "cross": stack(dec_w, "cross"), "source": list(pair.source), "target": out_tokens,
            "input": ["<bos>"] + list(target)}


#: The chapter's training recipe for the date task (see :func:`train_transformer`).
DATE_RECIPE = {"steps": 1000, "batch_size": 64, "d_model": 64, "num_heads": 4, "d_ff": 128,
               "num_layers": 2, "dropout": 0.0, "label_smoothing": 0.1, "lr": 0.003,
               "warmup_steps": 100, "schedule": "linear", "shared_vocabulary": True}


def train_transformer(task, seed: int = 0, progress: bool = True, device=None,
                      desc: str = "Transformer", **recipe):
    """Train a :class:`Transformer` on a translation task with :func:`attnlib.torch.train`.

    Adam (betas 0.9, 0.98) with a warm-up schedule (``DATE_RECIPE["schedule"]``),
    label-smoothed cross-entropy (:func:`attnlib.torch.seq2seq_loss`), gradient clipping at 1,
    a fixed number of steps, seeded. The settings default to :data:`DATE_RECIPE`.

    Parameters
    ----------
    task : attnlib.data.TranslationTask
    seed : int
    progress : bool
        Show the progress bar.
    device : torch.device, optional
        Default :func:`attnlib.torch.default_device`.
    desc : str
        Progress-bar label.
    **recipe
        Overrides of :data:`DATE_RECIPE`: ``steps``, ``batch_size``, ``d_model``, ``num_heads``,
        ``d_ff``, ``num_layers`` (encoder and decoder layers each), ``dropout``,
        ``label_smoothing``, ``lr`` (the Noam factor, or the peak rate of the ``"linear"``
        schedule), ``warmup_steps``, ``schedule`` (``"noam"``: :func:`noam_schedule`;
        ``"linear"``: :func:`warmup_linear_decay`), ``shared_vocabulary``
        (one embedding matrix for source, target and output, :func:`shared_vocabulary_map`).

    Returns
    -------
    model : Transformer
        In eval mode.
    history : attnlib.torch.History
    """
    from attnlib.torch.decoders import seq2seq_loss
    from attnlib.torch.device import default_device
    from attnlib.torch.training import train

    unknown = set(recipe) - set(DATE_RECIPE)
    if unknown:
        raise ValueError(f"unknown recipe settings {sorted(unknown)}; known: {sorted(DATE_RECIPE)}")
    r = {**DATE_RECIPE, **recipe}
    device = default_device() if device is None else device
    torch.manual_seed(seed)
    longest = max(max(len(p.source), len(p.target) + 1) for p in task.train + task.val + task.test)
    model = Transformer(len(task.source_vocab), len(task.target_vocab), r["d_model"], r["num_heads"],
                        r["d_ff"], r["num_layers"], r["num_layers"], r["dropout"],
                        max_len=max(64, longest + 16),
                        tgt_to_src=(shared_vocabulary_map(task.source_vocab, task.target_vocab)
                                    if r["shared_vocabulary"] else None)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"], betas=(0.9, 0.98), eps=1e-9)
    if r["schedule"] == "noam":
        sched = noam_schedule(opt, r["d_model"], r["warmup_steps"], r["lr"])
    elif r["schedule"] == "linear":
        sched = warmup_linear_decay(opt, r["warmup_steps"], r["steps"])
    else:
        raise ValueError(f"schedule must be 'noam' or 'linear', got {r['schedule']!r}")
    history = train(model, task.batch_stream("train", r["batch_size"], seed=seed, device=device),
                    lambda m, b: seq2seq_loss(m, b, r["label_smoothing"]), opt, steps=r["steps"],
                    scheduler=sched, clip=1.0, progress=progress, desc=desc)
    return model.eval(), history
