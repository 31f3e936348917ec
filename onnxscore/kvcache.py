"""Decoders with a KV cache: which dims are the new tokens and the cached ones, and which
phase an analysis describes (prefill of a prompt, or one generated token); the attention
mask's length, which is always cached + new tokens."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from onnxscore.errors import UsageError

_CACHE_INPUT = re.compile(r"(past|cache)", re.IGNORECASE)
_TOKEN_INPUTS = ("input_ids", "inputs_embeds", "input")
_MASK_INPUT = re.compile(r"mask", re.IGNORECASE)
_NOT_SELF_MASK = re.compile(r"encoder|cross", re.IGNORECASE)  # a cross-attention mask: source length
_LENGTH_NAME = re.compile(r"total|kv|seq|len", re.IGNORECASE)

PREFILL, DECODE, CHUNK, SYMBOLIC = "prefill", "decode", "chunk", "symbolic"


@dataclass(frozen=True)
class KVCache:
    """``past_dim`` counts cached tokens (axis -2 of the past key/value inputs, as Hugging Face
    and onnxruntime-genai lay them out), ``seq_dim`` the new tokens of this step."""

    past_inputs: Tuple[str, ...]
    past_dim: Optional[str]
    seq_dim: Optional[str]
    phase: str
    past: Optional[int] = None
    seq: Optional[int] = None
    total_dim: Optional[str] = None  # the attention mask's length, past + new tokens (see mask_length_dim)

    def describe(self) -> str:
        names = f"{len(self.past_inputs)} cache inputs; past length {self.past_dim!r}, new tokens {self.seq_dim!r}"
        if self.total_dim is not None:
            names += f", attention-mask length {self.total_dim!r} = past + new"
        if self.phase == PREFILL:
            return f"{names}: this is a prefill of {self.seq} prompt tokens (empty cache)"
        if self.phase == DECODE:
            return f"{names}: this is one generated token with {self.past} tokens cached"
        if self.phase == CHUNK:
            return f"{names}: this is {self.seq} new tokens after {self.past} cached"
        follows = f" ({self.total_dim} follows)" if self.total_dim is not None else ""
        return (f"{names}: set --dim {self.past_dim or 'PAST'}=0 --dim {self.seq_dim or 'SEQ'}=S for a "
                f"prefill, --dim {self.seq_dim or 'SEQ'}=1 --dim {self.past_dim or 'PAST'}=P for one token"
                + follows)


def detect(declared: Mapping[str, Optional[Tuple]], dims: Mapping[str, int]) -> Optional[KVCache]:
    """The cache layout of a model from its declared inputs, or None when it has no cache."""
    past = tuple(n for n, s in declared.items() if _CACHE_INPUT.search(n) and s is not None and len(s) >= 3)
    if not past:
        return None
    past_dim = next((s[-2] for n in past for s in [declared[n]] if isinstance(s[-2], str)), None)
    tokens = next((n for n in _TOKEN_INPUTS if n in declared), None)
    token_shape = declared.get(tokens) if tokens else None
    seq_dim = token_shape[1] if token_shape and len(token_shape) >= 2 and isinstance(token_shape[1], str) else None
    p, s = dims.get(past_dim), dims.get(seq_dim)
    if p is None or s is None:
        phase = SYMBOLIC
    elif p == 0:
        phase = PREFILL
    elif s == 1:
        phase = DECODE
    else:
        phase = CHUNK
    return KVCache(past, past_dim, seq_dim, phase, p, s, mask_length_dim(declared, past, past_dim, seq_dim))


def mask_length_dim(declared: Mapping[str, Optional[Tuple]], past_inputs: Sequence[str],
                    past_dim: Optional[str], seq_dim: Optional[str]) -> Optional[str]:
    """The attention mask's length dim of a KV-cache decoder, which is always past + new tokens,
    or None when the graph does not say so.

    The graph says so when an input named like a mask (``attention_mask``; not a cache input, not
    an ``encoder_``/``cross`` mask, whose length is the source's) has a last axis named by neither
    the past nor the new-token dim, by no other input (an encoder length would be), and not
    onnxscore's own ``<input>:<axis>`` name, and that name reads as a length: it contains
    ``total``, ``kv``, ``seq`` or ``len`` (onnxruntime-genai's ``total_sequence_length``, Hugging
    Face Optimum's ``total_sequence_length``, ``past_sequence_length + sequence_length``), or it
    is a sum naming the past dim (Optimum's ``past_sequence_length + 1``). Masks disagreeing on
    that dim: None."""
    if not isinstance(past_dim, str) or not isinstance(seq_dim, str) or past_dim == seq_dim:
        return None
    masks = [n for n, s in declared.items() if _MASK_INPUT.search(n) and not _NOT_SELF_MASK.search(n)
             and n not in past_inputs and s is not None and len(s) >= 2]
    found = set()
    for name in masks:
        d = declared[name][-1]
        if not isinstance(d, str) or d in (past_dim, seq_dim) or ":" in d or _NOT_SELF_MASK.search(d):
            continue
        if not (_LENGTH_NAME.search(d) or ("+" in d and past_dim in d)):
            continue
        if any(d in (s or ()) for n, s in declared.items() if n not in masks):
            continue
        found.add(d)
    return found.pop() if len(found) == 1 else None


def _given(name: str, declared: Mapping[str, Optional[Tuple]], dims: Mapping[str, int],
           input_shapes: Mapping[str, Sequence[int]]) -> Optional[int]:
    """The value the user gave a dim: ``--dim name=N``, else read off a whole ``--input`` shape
    at an axis the declared shape names it."""
    if name in dims:
        return dims[name]
    for inp, shape in input_shapes.items():
        decl = declared.get(inp)
        if decl is not None and len(decl) == len(shape) and name in decl:
            return int(shape[list(decl).index(name)])
    return None


def tie_total_length(declared: Mapping[str, Optional[Tuple]], dims: Mapping[str, int],
                     input_shapes: Mapping[str, Sequence[int]], path: str = "<model>"
                     ) -> Tuple[Dict[str, int], List[str], List[str]]:
    """``dims`` with the attention mask's length T (:func:`mask_length_dim`) tied to past P + new
    tokens S, and the notes and warnings saying so.

    P and S given, T not: T = P + S. T and one of P, S: the other, S = T - P (when T > P) or
    P = T - S. All three: T > P + S is a usage error (a mask cannot be longer than the cached
    and new tokens together), T < P + S a warning (only a shared max-length buffer, onnxruntime-
    genai's ``past_present_share_buffer``, has P as the buffer's capacity instead of the cached
    count). T < S is a usage error. Models without a tied mask length: ``dims`` unchanged."""
    dims = dict(dims)
    kv = detect(declared, {})
    t_dim = kv.total_dim if kv is not None else None
    if t_dim is None:
        return dims, [], []
    p_dim, s_dim = kv.past_dim, kv.seq_dim
    p, s, t = (_given(n, declared, dims, input_shapes) for n in (p_dim, s_dim, t_dim))
    if any(v is not None and v < 0 for v in (p, s, t)):
        return dims, [], []  # apply_dims refuses it with its own message
    tied = f"{t_dim} = {p_dim} + {s_dim}"
    if t is not None and s is not None and t < s:
        raise UsageError(f"{path}: {t_dim}={t} is shorter than {s_dim}={s}: the attention mask covers "
                         f"the new tokens and the cached ones ({tied})")
    if p is not None and s is not None and t is None:
        dims[t_dim] = p + s
        return dims, [f"{tied} = {p + s} (attention mask)"], []
    if p is not None and s is not None:
        if t > p + s:
            raise UsageError(f"{path}: {t_dim}={t} is longer than {p_dim} + {s_dim} = {p + s}: the "
                             f"attention mask covers the cached and the new tokens; drop --dim {t_dim}, "
                             f"it follows from the other two")
        if t < p + s:
            return dims, [], [f"{t_dim}={t} is less than {p_dim} + {s_dim} = {p + s}: read as a shared "
                              f"max-length cache buffer of {p} holding {t} tokens (onnxruntime-genai's "
                              f"past_present_share_buffer); without one, drop --dim {t_dim}"]
        return dims, [], []
    if t is not None and s is not None:
        dims[p_dim] = t - s
        return dims, [f"{p_dim} = {t_dim} - {s_dim} = {t - s} (attention mask)"], []
    if t is not None and p is not None and t > p:
        dims[s_dim] = t - p
        return dims, [f"{s_dim} = {t_dim} - {p_dim} = {t - p} (attention mask)"], []
    return dims, [], []
