"""Reading a purchase post: which variant and how many (README, "Posting a purchase").

Pure: no database. ``read_purchase`` takes the post's text, the campaign's hashtag key and what
the campaign offers (``Offer``), and returns a ``Reading``.

The grammar. Only the words after the first occurrence of the campaign's hashtag count; before
it, anything goes. Mentions (``@brand``), other hashtags, URLs, emoji and punctuation are not
words: a word is a run of letters, marks, digits and underscores (``M,`` is ``M``; ``T-shirt``
is ``T`` and ``shirt``). Each word is, in order of precedence:

1. an option value of the offer when its ``social.hashtags.hashtag_key`` (NFKC, case-folded)
   equals a value's key: ``m``, full-width ``BLUE`` and ``Blue`` all name ``Blue``; a value made of
   digits (a shoe size ``42``) is a value, not a quantity;
2. a quantity when it is all decimal digits of any script (Arabic-Indic or full-width digits
   count, read with ``unicodedata.decimal``), or such a number with ``x`` or the multiplication
   sign before or after it (``x2``, ``2x``). It must be 1 to the campaign's per-buyer limit;
   two different quantities, zero or more than the limit make the post's quantity invalid (the
   same number twice is that number);
3. anything else, ignored (``please``, ``thanks``, a value the offer does not have).

Words that name values narrow the variants: a variant fits when, for every such word, it has
one of the values the word names (a word matching values of two options fits a variant having
either). One fitting variant is the answer. Several (a value left out, or a word matching two
options) are narrowed by the buyer's saved preferences, option by option (a preference that would
leave none is skipped); still several, or none at all (``M L``), and the variant is needed: the
reply lists the choices. An offer without options has no variant and reads only the quantity.
"""

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

import regex

from social.hashtags import extract_hashtags, hashtag_key

# Words past this many after the hashtag are not read: a buyer writes a few.
MAX_WORDS = 50
# A number longer than this is above any per-buyer limit (and int() of it stays cheap).
_MAX_DIGITS = 6

_WORD = regex.compile(r"[\p{L}\p{M}\p{Nd}_]+")
# Not words: mentions, hashtags (ASCII or full-width sign) and URLs, skipped whole.
_SKIP = regex.compile(
    r"[@\uff20#\uff03][\p{L}\p{M}\p{Nd}_]*|[a-zA-Z][a-zA-Z0-9+.-]*://\S*|www\.\S*"
)
_TIMES = ("x", "\u00d7")  # x2, 2x, and with the multiplication sign


@dataclass(frozen=True)
class VariantChoice:
    """A variant on offer: its id and its values, one per option of the offer, in order."""

    variant_id: int
    values: tuple[str, ...]
    sku: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """How the variant is shown: ``M / Blue``."""
        return " / ".join(self.values)


@dataclass(frozen=True)
class Offer:
    """What a campaign offers, as the grammar reads it: its product's option names in position
    order, the variants it has stock rows for, and its per-buyer limit. No options: no variants,
    one stock (the campaign's)."""

    options: tuple[str, ...] = ()
    variants: tuple[VariantChoice, ...] = ()
    per_buyer_limit: int = 1

    def values_of(self, position: int) -> list[str]:
        """The values offered for the option at ``position`` (0-based), in first-seen order."""
        seen: dict[str, str] = {}
        for variant in self.variants:
            seen.setdefault(hashtag_key(variant.values[position]), variant.values[position])
        return list(seen.values())


@dataclass(frozen=True)
class Reading:
    """What a post asks for.

    ``quantity`` is None when the post's quantity is invalid (``quantity_problem`` says why:
    ``zero``, ``above_limit`` or ``several``). ``variant_id`` is the variant asked for, None for
    an offer without options or when it is needed; ``variant_needed`` then says so and
    ``candidates`` holds the variants that fit the words (empty when the words fit none)."""

    quantity: int | None
    quantity_problem: str = ""
    variant_id: int | None = None
    variant_needed: bool = False
    candidates: tuple[int, ...] = ()
    from_preferences: bool = False
    # The words read after the hashtag (their keys), for tests and audit.
    words: tuple[str, ...] = field(default=(), compare=False)


def words_after(text: str, key: str) -> list[str] | None:
    """The words after the first hashtag of ``text`` whose key is ``key`` (None if there is
    none), mentions, hashtags, URLs and punctuation left out."""
    start = next((tag.end for tag in extract_hashtags(text) if hashtag_key(tag.text) == key), None)
    if start is None:
        return None
    rest = _SKIP.sub(" ", text[start:])
    return [match.group() for match in _WORD.finditer(rest)][:MAX_WORDS]


def _number(word: str) -> int | None:
    """The value of a word that is a number (any script's decimal digits, optionally with an
    ``x`` before or after it), else None."""
    folded = word.casefold()
    for times in _TIMES:
        if len(folded) > 1 and folded.startswith(times):
            folded = folded[1:]
            break
        if len(folded) > 1 and folded.endswith(times):
            folded = folded[:-1]
            break
    if not folded or not all(unicodedata.decimal(ch, None) is not None for ch in folded):
        return None
    if len(folded) > _MAX_DIGITS:
        return 10**_MAX_DIGITS
    return int("".join(str(unicodedata.decimal(ch)) for ch in folded))


def read_purchase(
    *, text: str, key: str, offer: Offer, preferences: Mapping[str, str] | None = None
) -> Reading:
    """Read ``text`` (a post whose purchase hashtag has the key ``key``) against ``offer``;
    ``preferences`` are the buyer's saved values by option name (any case)."""
    words = words_after(text, key) or []
    # Value keys of each option position.
    value_keys = [
        {hashtag_key(v.values[pos]) for v in offer.variants} for pos in range(len(offer.options))
    ]
    quantities: set[int] = set()
    named: list[set[tuple[int, str]]] = []  # per value word: the (position, value key) it names
    keys = tuple(hashtag_key(word) for word in words)
    for word_key in keys:
        pairs = {(pos, word_key) for pos, known in enumerate(value_keys) if word_key in known}
        if pairs:
            named.append(pairs)
            continue
        number = _number(word_key)
        if number is not None:
            quantities.add(number)
    quantity, problem = _quantity(quantities, offer.per_buyer_limit)
    if not offer.options:
        return Reading(quantity=quantity, quantity_problem=problem, words=keys)
    fitting = [
        v
        for v in offer.variants
        if all(any(hashtag_key(v.values[pos]) == k for pos, k in pairs) for pairs in named)
    ]
    from_preferences = False
    if len(fitting) > 1 and preferences:
        narrowed = _by_preferences(fitting, offer.options, preferences)
        from_preferences = len(narrowed) < len(fitting)
        fitting = narrowed
    if len(fitting) == 1:
        return Reading(
            quantity=quantity,
            quantity_problem=problem,
            variant_id=fitting[0].variant_id,
            from_preferences=from_preferences,
            words=keys,
        )
    return Reading(
        quantity=quantity,
        quantity_problem=problem,
        variant_needed=True,
        candidates=tuple(v.variant_id for v in fitting),
        words=keys,
    )


def _quantity(numbers: set[int], limit: int) -> tuple[int | None, str]:
    if not numbers:
        return 1, ""
    if len(numbers) > 1:
        return None, "several"
    (number,) = numbers
    if number < 1:
        return None, "zero"
    if number > limit:
        return None, "above_limit"
    return number, ""


def _by_preferences(
    fitting: list[VariantChoice], options: tuple[str, ...], preferences: Mapping[str, str]
) -> list[VariantChoice]:
    """``fitting`` narrowed by each option's preferred value, in position order; a preference
    that would leave no variant is skipped."""
    wanted = {hashtag_key(name): hashtag_key(value) for name, value in preferences.items()}
    for pos, name in enumerate(options):
        value = wanted.get(hashtag_key(name))
        if value is None:
            continue
        narrowed = [v for v in fitting if hashtag_key(v.values[pos]) == value]
        if narrowed:
            fitting = narrowed
    return fitting
