"""``GrammarTokenizer``: a word-level tokenizer for the tool grammar with exact round-trip.

The vocabulary has one token per piece of the grammar that :func:`format_action` prints
(tags, quoted tool and argument names, ``": "`` and ``", "``, brackets), one token per
0.01 coordinate bin spelled the way JSON prints it (``"0.0"``, ``"0.01"`` ... ``"1.0"``),
integers 0..255, a word list for answers and tool outputs, every ASCII character, and
the bytes 0x80..0xFF for everything else. Encoding is greedy longest match, so any
string (without lone surrogates) encodes and decodes to itself.

Greedy longest match makes one token sequence per text *canonical*; other sequences
decode to the same text (``"0.1"`` + ``"2"`` reads ``"0.12"``, a single bin token).
:meth:`GrammarTokenizer.forbidden` names the next tokens that would make a sequence
non-canonical, so a policy that masks them generates exactly the sequences
:meth:`encode` produces, and re-scoring a generated text gives the log-probs recorded
while generating.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelis_env.actions import BUILTIN_ACTIONS, Action, ChoiceArg

PAD, BOS, EOS, SEP = "<pad>", "<bos>", "<eos>", "<sep>"
SPECIALS = (PAD, BOS, EOS, SEP)
"""Tokens that are never text: padding, sequence start/end, segment separator."""

TAGS = ("<tool_call>", "</tool_call>", "<answer>", "</answer>")
JSON_PIECES = ("{", "}", "[", "]", ": ", ", ", '"')
COORD_BINS = tuple(str(round(i / 100, 2)) for i in range(101))
"""One token per 0.01 bin, spelled as ``json.dumps`` prints the rounded value."""
INTEGERS = tuple(str(i) for i in range(256))
DEFAULT_WORDS = (
    # answers: colours, shapes, directions, yes/no
    "red", "green", "blue", "yellow", "orange", "purple", "pink", "brown", "black", "white", "gray", "grey",
    "cyan", "magenta", "circle", "square", "triangle", "rectangle", "star", "diamond", "cross", "yes", "no",
    "left", "right", "top", "bottom", "above", "below", "front", "behind", "before", "after", "first", "last",
    # question and tool-output words
    "How", "What", "Which", "When", "Where", "many", "the", "of", "to", "at", "in", "is", "on", "and",
    "frame", "frames", "zoomed", "shown", "px", "mask", "area", "object", "video", "image", "fps", "error",
    "Options", "seconds", "pixels", "wide", "tall", "colour", "color", "size",
)
_BYTE_BASE = 0x80
_PLACEHOLDER = "\ufffd"
"""Stands for a byte token in the text tail tracked while generating (never in vocab)."""


@dataclasses.dataclass(frozen=True)
class Encoding:
    """Token ids and the ``(start, end)`` characters each token covers."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class GrammarTokenizer:
    """Greedy longest-match tokenizer over grammar pieces, words, ASCII and UTF-8 bytes.

    Args:
        words: extra words (ASCII) added after the grammar and default words, e.g. a
            suite's answer vocabulary. The same words in the same order give the same ids.
        action_types: tool actions whose names, argument names and choices become tokens.
    """

    def __init__(self, words: Iterable[str] = (), action_types: Sequence[type[Action]] = BUILTIN_ACTIONS) -> None:
        self._build(tuple(words), tuple(_grammar_words(action_types)))

    def _build(self, words: tuple[str, ...], tool_words: tuple[str, ...]) -> None:
        self.words, self.tool_words = words, tool_words
        for word in self.words:
            if not word or not word.isascii():
                raise ValueError(f"tokenizer words must be non-empty ASCII, got {word!r}")
        pieces = [*SPECIALS, *TAGS, *JSON_PIECES, *self.tool_words, *COORD_BINS, *INTEGERS, *DEFAULT_WORDS,
                  *self.words, *(chr(c) for c in range(128))]
        self.tokens: list[str] = list(dict.fromkeys(pieces))
        self.byte_offset = len(self.tokens)
        self.tokens += [f"<0x{b:02X}>" for b in range(_BYTE_BASE, 256)]
        self.ids = {t: i for i, t in enumerate(self.tokens[: self.byte_offset])}
        self.pad_id, self.bos_id, self.eos_id, self.sep_id = (self.ids[t] for t in SPECIALS)
        self._text = {t: i for t, i in self.ids.items() if t not in SPECIALS}
        self.max_len = max(len(t) for t in self._text)
        self._prefixes = {t[:k] for t in self._text for k in range(1, len(t))}
        self._never = np.zeros(len(self.tokens), bool)
        self._never[[self.pad_id, self.bos_id, self.sep_id]] = True
        self._masks: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    # ------------------------------------------------------------- encode/decode
    def encode(self, text: str, max_tokens: int | None = None) -> Encoding:
        """Canonical tokens of ``text`` with character offsets (cut to ``max_tokens``)."""
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        pos, n = 0, len(text)
        while pos < n and (max_tokens is None or len(ids) < max_tokens):
            for length in range(min(self.max_len, n - pos), 0, -1):
                token = self._text.get(text[pos:pos + length])
                if token is not None:
                    ids.append(token)
                    offsets.append((pos, pos + length))
                    pos += length
                    break
            else:
                for byte in text[pos].encode("utf-8", "surrogateescape"):
                    ids.append(self.byte_offset + byte - _BYTE_BASE)
                    offsets.append((pos, pos + 1))
                pos += 1
        if max_tokens is not None:
            del ids[max_tokens:], offsets[max_tokens:]
        return Encoding(ids, offsets)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids; special tokens are dropped, byte runs decoded as UTF-8."""
        parts: list[str] = []
        pending = bytearray()
        for token in ids:
            if token >= self.byte_offset:
                pending.append(token - self.byte_offset + _BYTE_BASE)
                continue
            if pending:
                parts.append(pending.decode("utf-8", "surrogateescape"))
                pending.clear()
            if self.tokens[token] not in SPECIALS:
                parts.append(self.tokens[token])
        if pending:
            parts.append(pending.decode("utf-8", "surrogateescape"))
        return "".join(parts)

    def piece(self, token: int) -> str:
        """The characters a token adds to the text tail (a placeholder for byte tokens)."""
        if token >= self.byte_offset:
            return _PLACEHOLDER
        return "" if self.tokens[token] in SPECIALS else self.tokens[token]

    # ---------------------------------------------------------- canonical masks
    def forbidden(self, tail: str, starts: Sequence[int]) -> np.ndarray:
        """Next tokens that would make the sequence non-canonical (plus pad, bos and sep).

        ``tail`` is the end of the text generated so far (at least ``max_len`` - 1
        characters when there are that many) and ``starts`` the positions in ``tail``
        where tokens begin. A token ``t`` is forbidden when some token start ``s`` makes
        ``tail[s:] + t[:k]`` a vocabulary string: greedy encoding would merge them.
        """
        mask = self._never
        for start in starts:
            prefix = tail[start:]
            if prefix in self._prefixes:
                mask = mask | self._extension_mask(prefix)
        return mask

    def _extension_mask(self, prefix: str) -> np.ndarray:
        mask = self._masks.get(prefix)
        if mask is None:
            endings = {t[len(prefix):] for t in self._text if len(t) > len(prefix) and t.startswith(prefix)}
            mask = np.zeros(len(self.tokens), bool)
            if endings:
                longest = max(len(e) for e in endings)
                for token, index in self._text.items():
                    mask[index] = any(token[:k] in endings for k in range(1, min(longest, len(token)) + 1))
            self._masks[prefix] = mask
        return mask

    def forbidden_along(self, ids: Sequence[int]) -> list[np.ndarray]:
        """The :meth:`forbidden` mask before each token of ``ids`` and after the last one."""
        tracker = CanonicalTracker(self)
        masks = [tracker.mask()]
        for token in ids:
            tracker.push(token)
            masks.append(tracker.mask())
        return masks

    # ----------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild the same vocabulary (checked on load)."""
        return {"words": list(self.words), "tool_words": list(self.tool_words), "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GrammarTokenizer:
        """Rebuild a saved tokenizer; the vocabulary must come out identical."""
        tokenizer = cls.__new__(cls)
        tokenizer._build(tuple(data["words"]), tuple(data["tool_words"]))
        if tokenizer.tokens != data["tokens"]:
            raise ValueError("saved tokenizer vocabulary does not match its words (file edited or corrupt)")
        return tokenizer

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> GrammarTokenizer:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def __getstate__(self) -> dict[str, Any]:
        return self.to_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._build(tuple(state["words"]), tuple(state["tool_words"]))


class CanonicalTracker:
    """Follows a growing token sequence and gives the :meth:`GrammarTokenizer.forbidden` mask."""

    def __init__(self, tokenizer: GrammarTokenizer) -> None:
        self.tokenizer = tokenizer
        self.tail = ""
        self.starts: list[int] = []

    def push(self, token: int) -> None:
        piece = self.tokenizer.piece(token)
        if not piece:
            return
        self.starts.append(len(self.tail))
        self.tail += piece
        cut = max(len(self.tail) - self.tokenizer.max_len, 0)
        if cut:
            self.tail = self.tail[cut:]
            self.starts = [s - cut for s in self.starts if s >= cut]

    def mask(self) -> np.ndarray:
        return self.tokenizer.forbidden(self.tail, self.starts)


def _grammar_words(action_types: Sequence[type[Action]]) -> list[str]:
    """Tool names, argument names and choice values, quoted (as in JSON) and bare."""
    words: list[str] = ['"name"', '"arguments"']
    for action_type in action_types:
        names = [action_type.name, *action_type.arguments()]
        for field in action_type.arguments().values():
            kind = field.metadata["arg"]
            if isinstance(kind, ChoiceArg):
                names += kind.choices
        for name in names:
            words += [f'"{name}"', name]
    return list(dict.fromkeys(words))
