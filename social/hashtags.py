"""Hashtags as twitter-text reads them, and the key under which Hashcart matches them (DESIGN §4).

``extract_hashtags`` follows twitter-text's extractor (its conformance suite, ``extract.yml``, is
loaded by the tests): a hashtag starts with ``#`` or the full-width U+FF03 at a boundary,
holds letters, marks, digits and a few joiners, needs at least one letter, may not run into
another hash sign or ``://``, and does not count inside a URL.

Input is hostile, so extraction is linear in the text (DESIGN §4, issue 10 item 1). twitter-text
finds URLs by running its URL pattern over the whole text, which backtracks quadratically (and
worse) on dotted runs such as ``a.a.a.…``: 2,000 characters took seconds. Here:

- the text read is capped (``limit``: each adapter passes its platform's documented maximum),
  and so are the hashtags read (``MAX_HASHTAGS``);
- when the platform says where the URLs are (X's ``entities.urls``), those spans are used;
- otherwise a URL is looked for only around a hashtag that could touch one (a hash sign right
  after a URL character such as ``/``, or a hashtag followed by ``.`` or ``-``), within
  ``URL_WINDOW`` characters on each side, with patterns built from twitter-text's own character
  classes that never backtrack across a dotted run: a URL without a protocol starts only where
  a run of domain characters starts, labels are matched atomically, and which labels end in a
  top-level domain is a set look-up per label, from the right.

Deliberate differences from twitter-text, only on odd input (texts of words and URLs separated
by spaces agree with it; a random test of 20,000 such texts found no difference): a URL that
begins more than ``URL_WINDOW`` characters before a hashtag does not hide it; a URL without a
protocol is not recognised right after an accented Latin letter (``#caféexample.com`` keeps its
hashtag); and where twitter-text's left-to-right scan swallows a later URL into a rejected
earlier one (``-日本example.com/#x``), the later URL still counts here.

``hashtag_key`` is the matching key: NFKC, casefold, NFKC. Accents are kept, so ``#Café`` and
``#Cafe`` differ, and letters of other scripts that look Latin (Cyrillic U+0430) stay apart.
"""

import itertools
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

import regex
from twitter_text.regexp.cyrillic_letters_and_marks import cyrillic_letters_and_marks
from twitter_text.regexp.directional_markers_group import directional_markers_group
from twitter_text.regexp.invalid_chars_group import invalid_chars_group
from twitter_text.regexp.latin_accent_chars import latin_accent_chars
from twitter_text.regexp.punct import punct
from twitter_text.regexp.spaces_group import spaces_group
from twitter_text.regexp.valid_cctld import valid_cctld
from twitter_text.regexp.valid_gtld import valid_gtld

# Characters of text read per post when the caller names no platform limit: X's longest post.
MAX_TEXT = 25_000
# How far around a hashtag a URL that would hide it is looked for.
URL_WINDOW = 256
# Hashtags read per post, in order. A buyer writes one or two (a purchase, a confirmation, a
# link code); a post of thousands would only cost time (each costs a few microseconds).
MAX_HASHTAGS = 100

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
    # The hashtag, as long as it runs (atomic: twitter-text drops a hashtag followed by another
    # hash sign or by "://" rather than taking a shorter one).
    rf"((?>[{_ALNUM}]*[{_ALPHA}][{_ALNUM}]*))(?![#\uff03]|://)"
)


def _tlds(pattern: str) -> list[str]:
    """The alternatives of one of twitter-text's top-level-domain patterns, ``(?:(?:a|b)(?=…))``."""
    body = pattern[len("(?:(?:") : pattern.index(")(?=")]
    return body.split("|")


_LATIN = latin_accent_chars.pattern
_CYRILLIC = cyrillic_letters_and_marks.pattern
# twitter-text's domain characters: anything but ASCII punctuation, spaces and invisible marks.
_DOMAIN_CH = f"[^{punct}{spaces_group}{invalid_chars_group}{directional_markers_group}]"
# Top-level domains, lower-cased: a label is looked up here (a set), not tried against a
# 1,500-way alternation at every dot.
_TLDS = frozenset(tld.lower() for tld in _tlds(valid_gtld.pattern) + _tlds(valid_cctld.pattern))
_ASCII_TLD_PREFIX = regex.compile(r"[a-z]+", regex.IGNORECASE)
_NOT_AFTER_TLD = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@+-")
_LABEL = rf"(?>{_DOMAIN_CH}(?:(?:{_DOMAIN_CH}|[_\-])*{_DOMAIN_CH})?)"
_ASCII_LABEL = rf"(?>[\-a-z0-9{_LATIN}]+)"
# Path characters, with parentheses only in balanced pairs (one level nested); query characters.
_GEN = rf"[a-z{_CYRILLIC}0-9!*';:=+,.$/%#\[\]\-\u2013_~@|&{_LATIN}]"
_PARENS = rf"\((?>{_GEN}+|{_GEN}*\({_GEN}+\){_GEN}*)\)"
_QUERY = r"[a-z0-9!?*'@();:&=+$/%#\[\]\-_.,~|]"
# A run of labels that may hold a URL's domain. With a protocol: after any character that may
# precede a URL. Without one: only where a run of domain characters starts (never after a
# letter, a dot, a dash, an underscore, a slash, @, $ or a hash sign), so that a dotted run is
# read once, not from every label; and, as twitter-text does, right after a letter of another
# script ("日本example.com"), but then ASCII labels only, and never after an accented Latin letter.
# Nothing follows the runs in the patterns, so they never backtrack; which prefix of a run is a
# domain (the longest ending in a top-level domain) is found by ``_domain_end``.
_URL_HEAD = regex.compile(
    rf"(?:(?P<protocol>(?<![a-z0-9@\uff20$#\uff03{invalid_chars_group}])https?://)"
    rf"|(?<![^{punct}{spaces_group}{directional_markers_group}])(?<![\-_./@\uff20$#\uff03]))"
    rf"(?P<domain>{_LABEL}(?:\.{_LABEL})+)"
    r"|"
    rf"(?<=[^\x00-\x7f{_LATIN}\uff20\uff03{invalid_chars_group}{directional_markers_group}])"
    rf"(?P<script>{_ASCII_LABEL}(?:\.{_ASCII_LABEL})+)",
    regex.IGNORECASE,
)
_URL_TAIL = regex.compile(
    rf"(?::[0-9]+)?(?P<path>/(?>{_GEN}+|{_PARENS})*)?(?:\?{_QUERY}*)?", regex.IGNORECASE
)
# twitter-text reports, of a URL without a protocol, its ASCII domains (the last with the path).
_ASCII_RUN = regex.compile(
    rf"(?<![\-a-z0-9{_LATIN}.]){_ASCII_LABEL}(?:\.{_ASCII_LABEL})+", regex.IGNORECASE
)
_PLAIN_DOMAIN = regex.compile(r"[a-z0-9](?:[\-a-z0-9.]*[a-z0-9])?", regex.IGNORECASE)
# t.co links end after their slug; a slug longer than 40 is no link.
_TCO = regex.compile(rf"https?://t\.co/([a-z0-9]+)(?:\?{_QUERY}*)?", regex.IGNORECASE)
# A hash sign right after one of these may sit in a URL's path or query.
_URL_BEFORE_HASH = frozenset("!*';:=+,.$/%[]-\u2013_~@|&?()#")


class Hashtag(NamedTuple):
    """A hashtag as written (without its hash sign) and its span in the text, in code points
    (a named tuple: a post may hold thousands, and it is cheaper to make than a dataclass)."""

    text: str
    start: int
    end: int


def extract_hashtags(
    text: str, *, urls: Iterable[tuple[int, int]] | None = None, limit: int = MAX_TEXT
) -> list[Hashtag]:
    """The hashtags of ``text[:limit]`` in order of appearance, as twitter-text extracts them,
    of the first ``MAX_HASHTAGS`` hash signs that start one.

    ``urls``: the spans (start, end) of the URLs in ``text`` as the platform found them; when
    given, no URL is looked for. Time is linear in ``min(len(text), limit)``.
    """
    text = text[:limit]
    matches = itertools.islice(_HASHTAG.finditer(text), MAX_HASHTAGS)
    candidates = [Hashtag(m.group(2), m.start(), m.end()) for m in matches]
    if not candidates:
        return candidates
    if urls is not None:
        spans = sorted(urls)
    elif "." in text:  # every URL has a dot in its domain
        spans = _urls_near(text, candidates)
    else:
        return candidates
    return _outside(candidates, spans) if spans else candidates


def _urls_near(text: str, candidates: list[Hashtag]) -> list[tuple[int, int]]:
    """The URLs within ``URL_WINDOW`` of a hashtag that could touch one: its hash sign may sit
    in a URL's path or query, or a URL may start inside it (a domain holds no hash sign).
    Overlapping windows are merged, so each character is read at most once per pattern."""
    windows: list[list[int]] = []
    for tag in candidates:
        before = text[tag.start - 1] if tag.start else " "
        # A hashtag ending in "." or "-" may end inside a URL that starts within it (U+FF03
        # "全角foo.com": the URL starts after the letter of another script).
        if before not in _URL_BEFORE_HASH and text[tag.end : tag.end + 1] not in (".", "-"):
            continue
        low, high = max(0, tag.start - URL_WINDOW), min(len(text), tag.end + URL_WINDOW)
        if windows and low <= windows[-1][1]:
            windows[-1][1] = high
        else:
            windows.append([low, high])
    spans: list[tuple[int, int]] = []
    for low, high in windows:
        for match in _URL_HEAD.finditer(text, low, high):
            spans.extend(_reported(text, match, high))
    return sorted(spans)


def _domain_end(text: str, start: int, end: int) -> int:
    """Where the longest domain in the run of labels ``text[start:end]`` ends: after its last
    label that is a top-level domain (not the first label), as twitter-text's greedy domain
    pattern finds it; 0 when there is none. One pass from the right, a set look-up a label."""
    labels = text[start:end].split(".")
    label_end = end
    for index in range(len(labels) - 1, 0, -1):
        label = labels[index]
        label_start = label_end - len(label)
        after = text[label_end] if label_end < len(text) else ""
        if label.lower() in _TLDS and after not in _NOT_AFTER_TLD:
            return label_end
        # A top-level domain may also end where another script starts ("example.com日本").
        prefix = _ASCII_TLD_PREFIX.match(label)
        if (
            prefix
            and prefix.end() < len(label)
            and prefix.group().lower() in _TLDS
            and label[prefix.end()] not in _NOT_AFTER_TLD
        ):
            return label_start + prefix.end()
        if label.lower().startswith("xn--") and after not in _NOT_AFTER_TLD:
            return label_end
        label_end = label_start - 1
    return 0


def _reported(text: str, match: regex.Match[str], high: int) -> list[tuple[int, int]]:
    """The URL spans twitter-text reports for one run of labels found by ``_URL_HEAD``."""
    group = "domain" if match.group("domain") is not None else "script"
    start, end = match.span(group)
    domain_end = _domain_end(text, start, end)
    if not domain_end:
        return []
    tail = _URL_TAIL.match(text, domain_end, high) if domain_end == end else None
    url_end = tail.end() if tail else domain_end
    with_path = bool(tail and tail.group("path") is not None)
    if match.group("protocol"):
        url_start = match.start("protocol")
        if text[start:domain_end].lower() != "t.co":
            return [(url_start, url_end)]
        tco = _TCO.match(text, url_start, url_end)
        return [] if tco is None or len(tco.group(1)) > 40 else [(url_start, tco.end())]
    if group == "script":
        return [(start, url_end if with_path else domain_end)]
    if _PLAIN_DOMAIN.fullmatch(text, start, domain_end):
        # The usual case, read once: the whole domain is one ASCII domain.
        return [(start, url_end if with_path else domain_end)]
    domains = []
    for run in _ASCII_RUN.finditer(text, start, domain_end):
        ascii_end = _domain_end(text, run.start(), run.end())
        if ascii_end:
            domains.append((run.start(), ascii_end))
    if domains and with_path and domains[-1][1] == domain_end:
        domains[-1] = (domains[-1][0], url_end)
    return domains


def _outside(tags: list[Hashtag], spans: list[tuple[int, int]]) -> list[Hashtag]:
    """The hashtags (in order) that overlap none of ``spans`` (sorted by start): one pass."""
    kept, i = [], 0
    for tag in tags:
        # Spans ending before this hashtag end before every later one too.
        while i < len(spans) and spans[i][1] <= tag.start:
            i += 1
        if i == len(spans) or spans[i][0] >= tag.end:
            kept.append(tag)
    return kept


def hashtag_key(tag: str) -> str:
    """The matching key of a hashtag written without its hash sign: NFKC, casefold, NFKC."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", tag).casefold())


def is_valid_hashtag(tag: str) -> bool:
    """Whether ``#`` + ``tag`` is, in full, one hashtag by twitter-text's rules."""
    text = f"#{tag}"
    found = extract_hashtags(text)
    return len(found) == 1 and found[0].start == 0 and found[0].end == len(text)
