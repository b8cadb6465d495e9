"""The compact trainable policy: a grammar tokenizer and a CoordConv CNN + transformer.

Imports torch (and OpenCV); :mod:`agents` itself does not import this package.
"""

from __future__ import annotations

from agents.compact.model import CompactConfig, CompactPolicy, count_parameters, from_spec
from agents.compact.tokenizer import CanonicalTracker, Encoding, GrammarTokenizer

__all__ = ["CanonicalTracker", "CompactConfig", "CompactPolicy", "Encoding", "GrammarTokenizer", "count_parameters",
           "from_spec"]
