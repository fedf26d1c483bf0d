r"""The KV cache: keep every layer's past keys and values so generation computes each token once.

In a causal model the keys and values of position :math:`j` never change once computed: later
tokens cannot influence them. So a generation step only needs the new token's query, key and
value; its keys and values are *appended* to the cache and its query attends over the cache.
A step then costs :math:`O(n)` (one query against :math:`n` keys) instead of re-running the
whole prefix, :math:`O(n^2)` attention and :math:`O(n)` projections and FFNs.

Memory: 2 (keys and values) x layers x batch x heads x length x d_head numbers, i.e.
:math:`2\,N_\text{layers}\,B\,L\,d_\text{model}` (see :func:`kv_cache_bytes`).

The tensors are preallocated to ``max_len`` positions and written in place, so appending never
copies the past (``torch.cat`` would copy all of it at every step).
"""
from __future__ import annotations

import torch

from attnlib.checks import check_count, check_positive_count, check_torch_inputs

__all__ = ["LayerKVCache", "KVCache", "kv_cache_bytes"]


def _check_sizes(sizes: dict, dtype) -> None:
    for name, n in sizes.items():
        check_positive_count(n, name)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype (keys and values are real numbers), "
                         f"got {dtype!r}")


class LayerKVCache:
    """The cache of one attention layer: keys and values of the first ``length`` positions.

    Parameters
    ----------
    batch, num_heads, max_len, d_head : int
        The buffers have shape (batch, num_heads, max_len, d_head).
    device, dtype : optional

    Attributes
    ----------
    keys, values : torch.Tensor, shape (batch, num_heads, max_len, d_head)
        Preallocated; only the first ``length`` positions are valid.
    length : int
        Number of cached positions.
    """

    def __init__(self, batch: int, num_heads: int, max_len: int, d_head: int, device=None,
                 dtype=torch.float32):
        _check_sizes({"batch": batch, "num_heads": num_heads, "max_len": max_len, "d_head": d_head}, dtype)
        shape = (int(batch), int(num_heads), int(max_len), int(d_head))
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    @property
    def max_len(self) -> int:
        """Number of positions the buffers hold."""
        return self.keys.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write new keys and values after the cached ones; return all of them.

        Parameters
        ----------
        k, v : torch.Tensor, shape (batch, num_heads, T, d_head)
            Keys and values of ``T`` new positions.

        Returns
        -------
        keys, values : torch.Tensor, shape (batch, num_heads, length + T, d_head)
            Views of the buffers (no copy), including the new positions.

        Raises
        ------
        ValueError
            If the shapes, dtype or device do not match the buffers or the cache would overflow
            ``max_len``.
        """
        B, H, _, D = self.keys.shape
        check_torch_inputs({"the cache's buffers": self.keys, "k": k, "v": v})
        for name, t in (("k", k), ("v", v)):
            if t.dim() != 4 or (t.shape[0], t.shape[1], t.shape[3]) != (B, H, D):
                raise ValueError(f"{name} must have shape (batch={B}, num_heads={H}, T, d_head={D}), "
                                 f"got {tuple(t.shape)}")
        if k.shape != v.shape:
            raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} positions; {self.length} are used and "
                             f"{k.shape[2]} more do not fit")
        self.keys[:, :, self.length:end] = k
        self.values[:, :, self.length:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def reset(self) -> None:
        """Forget the cached positions (the buffers are reused)."""
        self.length = 0


class KVCache:
    """One :class:`LayerKVCache` per layer of a model (index it by layer).

    Parameters
    ----------
    num_layers, batch, num_heads, max_len, d_head : int
    device, dtype : optional

    Examples
    --------
    ::

        cache = KVCache(num_layers=4, batch=1, num_heads=4, max_len=128, d_head=32)
        logits = model(prompt, cache=cache)     # fills positions 0 .. T-1 of every layer
        logits = model(next_token, cache=cache) # one new position: attends over T + 1 keys
    """

    def __init__(self, num_layers: int, batch: int, num_heads: int, max_len: int, d_head: int,
                 device=None, dtype=torch.float32):
        _check_sizes({"num_layers": num_layers, "batch": batch, "num_heads": num_heads, "max_len": max_len,
                      "d_head": d_head}, dtype)
        self.layers = [LayerKVCache(batch, num_heads, max_len, d_head, device, dtype)
                       for _ in range(int(num_layers))]

    def __getitem__(self, layer: int) -> LayerKVCache:
        return self.layers[layer]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        """Number of positions cached (the same in every layer after a full forward pass)."""
        return self.layers[0].length

    @property
    def max_len(self) -> int:
        """Number of positions the cache holds."""
        return self.layers[0].max_len

    def reset(self) -> None:
        """Empty every layer's cache."""
        for layer in self.layers:
            layer.reset()

    def nbytes(self) -> int:
        """Bytes of the preallocated buffers (keys and values of every layer)."""
        return sum(c.keys.nbytes + c.values.nbytes for c in self.layers)


def kv_cache_bytes(num_layers: int, d_model: int, length: int, batch: int = 1,
                   bytes_per_number: int = 4) -> int:
    r"""Memory of a KV cache: :math:`2 \times N_\text{layers} \times B \times L \times d_\text{model}` numbers.

    (``num_heads * d_head = d_model``, so the head count does not matter.)

    Parameters
    ----------
    num_layers, d_model, length, batch : int
    bytes_per_number : int
        4 for float32, 2 for float16/bfloat16.

    Returns
    -------
    int
        Bytes.
    """
    for name, n in (("num_layers", num_layers), ("d_model", d_model), ("length", length), ("batch", batch),
                    ("bytes_per_number", bytes_per_number)):
        check_count(n, name)
    return 2 * num_layers * batch * length * d_model * bytes_per_number
