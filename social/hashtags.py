"""Hashtags as twitter-text reads them, and the key under which Hashcart matches them (DESIGN §4).

``extract_hashtags`` follows twitter-text's extractor (its conformance suite, ``extract.yml``, is
loaded by the tests): a hashtag starts with ``#`` or the full-width U+FF03 at a boundary,
holds letters, marks, digits and a few joiners, needs at least one letter, may not run into
another hash sign or ``://``, and does not count inside a URL.

``hashtag_key`` is the matching key: NFKC, casefold, NFKC. Accents are kept, so ``#Café`` and
``#Cafe`` differ, and letters of other scripts that look Latin (Cyrillic U+0430) stay apart.
"""

import unicodedata
from dataclasses import dataclass

import regex
from twitter_text import extract_urls_with_indices

_ALPHA = r"\p{L}\p{M}"
_ALNUM = (
    _ALPHA + r"\p{Nd}_\u200c\u200d\ua67e\u05be\u05f3\u05f4\uff5e\u301c\u309b\u309c\u30a0"
    r"\u30fb\u3003\u0f0b\u0f0c\u00b7"
)
_HASHTAG = regex.compile(
    # A boundary: the start, or a character that cannot continue a word (nor "&", for entities),
    # or an emoji variation selector.
    rf"(?:^|(?<=[^{_ALNUM}&])|(?<=[\ufe0e\ufe0f]))"
    # The hash sign, not the start of a keycap emoji (#️⃣).
    r"([#\uff03])(?![\ufe0f\u20e3])"
    rf"([{_ALNUM}]*[{_ALPHA}][{_ALNUM}]*)"
)
# twitter-text drops a match followed by another hash sign or by "://" (checked after matching,
# without backtracking into a shorter hashtag).
_INVALID_END = regex.compile(r"[#\uff03]|://")


@dataclass(frozen=True, slots=True)
class Hashtag:
    """A hashtag as written (without its hash sign) and its span in the text, in code points."""

    text: str
    start: int
    end: int


def extract_hashtags(text: str) -> list[Hashtag]:
    """The hashtags of ``text`` in order of appearance, as twitter-text extracts them."""
    urls = [tuple(url["indices"]) for url in extract_urls_with_indices(text)] if "." in text else []
    found = []
    for match in _HASHTAG.finditer(text):
        start, end = match.start(1), match.end(2)
        if _INVALID_END.match(text, end):
            continue
        if any(u_start < end and start < u_end for u_start, u_end in urls):
            continue
        found.append(Hashtag(text=match.group(2), start=start, end=end))
    return found


def hashtag_key(tag: str) -> str:
    """The matching key of a hashtag written without its hash sign: NFKC, casefold, NFKC."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", tag).casefold())


def is_valid_hashtag(tag: str) -> bool:
    """Whether ``#`` + ``tag`` is, in full, one hashtag by twitter-text's rules."""
    text = f"#{tag}"
    found = extract_hashtags(text)
    return len(found) == 1 and found[0].start == 0 and found[0].end == len(text)
