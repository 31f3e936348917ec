"""Decoders with a KV cache: which dims are the new tokens and the cached ones, and which
phase an analysis describes (prefill of a prompt, or one generated token)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

_CACHE_INPUT = re.compile(r"(past|cache)", re.IGNORECASE)
_TOKEN_INPUTS = ("input_ids", "inputs_embeds", "input")

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

    def describe(self) -> str:
        names = f"{len(self.past_inputs)} cache inputs; past length {self.past_dim!r}, new tokens {self.seq_dim!r}"
        if self.phase == PREFILL:
            return f"{names}: this is a prefill of {self.seq} prompt tokens (empty cache)"
        if self.phase == DECODE:
            return f"{names}: this is one generated token with {self.past} tokens cached"
        if self.phase == CHUNK:
            return f"{names}: this is {self.seq} new tokens after {self.past} cached"
        return (f"{names}: set --dim {self.past_dim or 'PAST'}=0 --dim {self.seq_dim or 'SEQ'}=S for a "
                f"prefill, --dim {self.seq_dim or 'SEQ'}=1 --dim {self.past_dim or 'PAST'}=P for one token")


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
    return KVCache(past, past_dim, seq_dim, phase, p, s)
