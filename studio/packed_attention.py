"""Packed rows attend within themselves at the cost of their own lengths.

With padding-free packing a batch is one long sequence of rows whose position_ids restart at each
row. Transformers' "sdpa" keeps the rows apart with a block-diagonal mask over the whole sequence:
attention then costs the packed length squared (and sdpa with a mask cannot use its flash kernels),
so a batch of long rows pays for attention across rows it then masks out. "sdpa_packed" splits the
sequence at the row boundaries and runs causal sdpa on each row: the cost is the sum of the rows'
squared lengths, and each call may take the flash kernel (on CPU as on CUDA). Everything else
(padded batches, generation with a cache, sliding-window layers) goes to transformers' own sdpa.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "sdpa_packed"

_last_boundaries: tuple[torch.Tensor | None, list[int]] = (None, [])  # every layer of a forward sees one position_ids


def row_lengths(position_ids: torch.Tensor) -> list[int]:
    """The packed rows' lengths: a row starts wherever the position does not follow the one before."""
    global _last_boundaries
    if _last_boundaries[0] is position_ids:
        return _last_boundaries[1]
    positions = position_ids[0]
    starts = torch.nonzero(positions[1:] != positions[:-1] + 1).flatten() + 1
    edges = [0, *starts.tolist(), positions.numel()]
    lengths = [b - a for a, b in pairwise(edges)]
    _last_boundaries = (position_ids, lengths)
    return lengths


def sdpa_packed_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                        **kwargs):
    position_ids = kwargs.get("position_ids")
    packed = (position_ids is not None and query.shape[0] == 1 and query.shape[2] == key.shape[2] > 1
              and kwargs.get("sliding_window") is None and position_ids.shape[-1] == query.shape[2])
    lengths = row_lengths(position_ids) if packed else []
    if len(lengths) < 2:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    outputs = [
        sdpa_attention_forward(module, q, k, v, None, dropout=dropout, scaling=scaling, is_causal=True, **kwargs)[0]
        for q, k, v in zip(query.split(lengths, dim=2), key.split(lengths, dim=2), value.split(lengths, dim=2))]
    return torch.cat(outputs, dim=1), None  # (batch, sequence, heads, head_dim), as sdpa returns it


def use_packed_attention(model) -> bool:
    """Switch a model on plain sdpa to "sdpa_packed" (the model's own attention otherwise stays)."""
    if model.config._attn_implementation != "sdpa":
        return False
    AttentionInterface.register(NAME, sdpa_packed_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True
