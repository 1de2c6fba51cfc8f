"""A word-level tokenizer: prompts to integer ids over the captions' vocabulary.

Large systems cut text into sub-word pieces (byte-pair encoding) so that any string has some
encoding; ours has a closed vocabulary of a few dozen words, so whole words are the tokens. A
word the model never saw in training has no embedding: it is reported back to the user, with
the nearest known words, never silently dropped.
"""

from __future__ import annotations

import difflib
import re

PAD, START, END = "<pad>", "<start>", "<end>"
SPECIAL = (PAD, START, END)

# Words and numerals; a comma is its own token (it separates attributes in captions).
_WORD = re.compile(r"[a-z]+|[0-9]|,")


def words_of(text: str) -> list[str]:
    """The words of `text`, lower-cased: letters, single digits and commas; other characters
    (spaces, full stops, hyphens) separate words."""
    if not isinstance(text, str):
        raise ValueError(f"a prompt must be a string, got {type(text).__name__}: {text!r}")
    return _WORD.findall(text.lower())


class Tokenizer:
    """Maps prompts to [B, length] int64 ids, ``<start> words... <end>`` padded with ``<pad>`` (id 0).

    Build it from the training captions (``Tokenizer.from_captions``) or from a saved word list
    (``Tokenizer(words)``); ``words`` excludes the three special tokens, which take ids 0, 1, 2.
    """

    def __init__(self, words, length: int = 16):
        words = list(words)
        if len(set(words)) != len(words) or any(w in SPECIAL or not _WORD.fullmatch(w) for w in words):
            raise ValueError("words must be distinct lower-case words, digits or ',' (no special tokens)")
        if not isinstance(length, int) or isinstance(length, bool) or length < 3:
            raise ValueError(f"length must be an integer >= 3 (start, one word, end), got {length!r}")
        self.vocabulary = [*SPECIAL, *words]
        self.ids = {w: i for i, w in enumerate(self.vocabulary)}
        self.length = length

    @classmethod
    def from_captions(cls, captions, length: int = 16) -> Tokenizer:
        """The vocabulary of all words in `captions` (a list of strings), in sorted order."""
        return cls(sorted({w for c in captions for w in words_of(c)}), length)

    def __len__(self) -> int:
        return len(self.vocabulary)

    def unknown(self, prompt: str) -> list[str]:
        """The words of `prompt` that are not in the vocabulary (in order, without repeats)."""
        seen = []
        for w in words_of(prompt):
            if w not in self.ids and w not in seen:
                seen.append(w)
        return seen

    def encode(self, prompts):
        """[B, length] int64 ids of a prompt or a list of prompts; ValueError for unknown words."""
        import torch

        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise ValueError("prompts must hold at least one prompt")
        rows = []
        for prompt in prompts:
            missing = self.unknown(prompt)
            if missing:
                hints = []
                for w in missing:
                    close = difflib.get_close_matches(w, self.vocabulary[len(SPECIAL) :], n=3)
                    hints.append(f"{w!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
                raise ValueError(
                    f"prompt {prompt!r} has words the model never saw: {'; '.join(hints)}. "
                    f"Known words: {' '.join(self.vocabulary[len(SPECIAL) :])}"
                )
            words = words_of(prompt)
            if not words:
                raise ValueError(f"prompt {prompt!r} has no words")
            if len(words) + 2 > self.length:
                raise ValueError(f"prompt {prompt!r} has {len(words)} words; at most {self.length - 2} fit")
            ids = [self.ids[START], *(self.ids[w] for w in words), self.ids[END]]
            rows.append(ids + [self.ids[PAD]] * (self.length - len(ids)))
        return torch.tensor(rows, dtype=torch.int64)

    def decode(self, ids) -> list[str]:
        """The prompts (words joined by spaces, commas attached) that ``encode`` made `ids` from."""
        out = []
        for row in ids.tolist() if hasattr(ids, "tolist") else ids:
            words = [self.vocabulary[i] for i in row if self.vocabulary[i] not in SPECIAL]
            out.append(" ".join(words).replace(" ,", ","))
        return out
