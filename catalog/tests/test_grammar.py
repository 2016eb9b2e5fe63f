"""The purchase-post grammar (``catalog.grammar``), case by case: what each post asks for."""

import pytest

from catalog.grammar import Offer, Reading, VariantChoice, read_purchase, words_after

KEY = "buyteeshirt"
# A tee in sizes and colours: 1 S/Blue, 2 M/Blue, 3 L/Blue, 4 M/Red, 5 L/Red, 6 XL/Red.
TEE = Offer(
    options=("Size", "Colour"),
    variants=(
        VariantChoice(1, ("S", "Blue")),
        VariantChoice(2, ("M", "Blue")),
        VariantChoice(3, ("L", "Blue")),
        VariantChoice(4, ("M", "Red")),
        VariantChoice(5, ("L", "Red")),
        VariantChoice(6, ("XL", "Red")),
    ),
    per_buyer_limit=3,
)
# "Orange" is both a scent and a colour.
CANDLE = Offer(
    options=("Scent", "Colour"),
    variants=(
        VariantChoice(11, ("Orange", "White")),
        VariantChoice(12, ("Vanilla", "Orange")),
        VariantChoice(13, ("Vanilla", "White")),
    ),
    per_buyer_limit=2,
)
# Shoe sizes are numbers.
SHOE = Offer(
    options=("Size",),
    variants=(VariantChoice(21, ("40",)), VariantChoice(22, ("42",)), VariantChoice(23, ("2",))),
    per_buyer_limit=5,
)
PLAIN = Offer(per_buyer_limit=2)


def ok(variant: int | None, quantity: int = 1, *, prefs: bool = False) -> Reading:
    return Reading(quantity=quantity, variant_id=variant, from_preferences=prefs)


def needed(*candidates: int, quantity: int | None = 1, problem: str = "") -> Reading:
    return Reading(
        quantity=quantity, quantity_problem=problem, variant_needed=True, candidates=candidates
    )


def bad_quantity(problem: str, variant: int | None) -> Reading:
    return Reading(quantity=None, quantity_problem=problem, variant_id=variant)


CASES: list[tuple[str, str, Offer, dict[str, str] | None, Reading]] = [
    # (case, post text, offer, saved preferences, reading)
    ("size and colour", "#BuyTeeShirt M blue", TEE, None, ok(2)),
    ("colour then size", "#BuyTeeShirt blue M", TEE, None, ok(2)),
    ("quantity first", "#BuyTeeShirt 2 L red", TEE, None, ok(5, 2)),
    ("quantity last", "#BuyTeeShirt L red 3", TEE, None, ok(5, 3)),
    ("any case", "#buyteeshirt xl RED", TEE, None, ok(6)),
    ("one value names the variant", "#BuyTeeShirt XL", TEE, None, ok(6)),
    ("one colour names one variant", "#BuyTeeShirt S", TEE, None, ok(1)),
    ("size missing", "#BuyTeeShirt blue", TEE, None, needed(1, 2, 3)),
    ("nothing named", "#BuyTeeShirt", TEE, None, needed(1, 2, 3, 4, 5, 6)),
    ("size missing, preference fills", "#BuyTeeShirt blue", TEE, {"size": "m"}, ok(2, prefs=True)),
    (
        "nothing named, preferences fill",
        "#BuyTeeShirt",
        TEE,
        {"Size": "L", "Colour": "Red"},
        ok(5, prefs=True),
    ),
    ("a preference never overrides a word", "#BuyTeeShirt S", TEE, {"Size": "M"}, ok(1)),
    (
        "a preference not offered is skipped",
        "#BuyTeeShirt red",
        TEE,
        {"Size": "S"},
        needed(4, 5, 6),
    ),
    ("two sizes fit nothing", "#BuyTeeShirt M L", TEE, None, needed()),
    ("a combination not offered", "#BuyTeeShirt S red", TEE, {"Size": "M"}, needed()),
    ("punctuation", "#BuyTeeShirt, M; blue!!", TEE, None, ok(2)),
    ("emoji between words", "#BuyTeeShirt 😍 M 👕 blue 🙏", TEE, None, ok(2)),
    ("emoji glued to a word", "#BuyTeeShirt M🔥 2", TEE, None, needed(2, 4, quantity=2)),
    (
        "words before the hashtag",
        "L red please @HashcartDeals #BuyTeeShirt M blue",
        TEE,
        None,
        ok(2),
    ),
    ("mention after the hashtag", "#BuyTeeShirt @HashcartDeals M blue", TEE, None, ok(2)),
    ("other hashtags are not words", "#BuyTeeShirt #L M blue #2", TEE, None, ok(2)),
    ("a URL is not words", "#BuyTeeShirt https://example.com/L/2 M blue", TEE, None, ok(2)),
    ("unknown words ignored", "#BuyTeeShirt medium size M in blue thanks", TEE, None, ok(2)),
    ("repeated words", "#BuyTeeShirt M M blue Blue", TEE, None, ok(2)),
    ("repeated quantity", "#BuyTeeShirt 2 M blue 2", TEE, None, ok(2, 2)),
    ("quantity zero", "#BuyTeeShirt 0 M blue", TEE, None, bad_quantity("zero", 2)),
    (
        "quantity above the limit",
        "#BuyTeeShirt 4 M blue",
        TEE,
        None,
        bad_quantity("above_limit", 2),
    ),
    (
        "a huge number",
        "#BuyTeeShirt 99999999999999999999 M blue",
        TEE,
        None,
        bad_quantity("above_limit", 2),
    ),
    ("two quantities", "#BuyTeeShirt 2 3 M blue", TEE, None, bad_quantity("several", 2)),
    ("Arabic-Indic digits", "#BuyTeeShirt ٢ M blue", TEE, None, ok(2, 2)),
    ("Devanagari digits", "#BuyTeeShirt M blue ३", TEE, None, ok(2, 3)),
    (
        "full-width digits and letters",
        "#BuyTeeShirt \uff12 \uff2d\uff25\uff24 \uff2d \uff42\uff4c\uff55\uff45",
        TEE,
        None,
        ok(2, 2),
    ),
    ("x before the number", "#BuyTeeShirt x2 M blue", TEE, None, ok(2, 2)),
    ("x after the number", "#BuyTeeShirt M blue 3x", TEE, None, ok(2, 3)),
    ("multiplication sign", "#BuyTeeShirt \u00d72 M blue", TEE, None, ok(2, 2)),
    ("a superscript two is no quantity", "#BuyTeeShirt M² blue", TEE, None, ok(2)),
    ("full-width hash sign", "\uff03BuyTeeShirt M blue", TEE, None, ok(2)),
    ("a word matching two options", "#BuyCandle orange", CANDLE, None, needed(11, 12)),
    ("two options' word, narrowed by another", "#BuyCandle orange white", CANDLE, None, ok(11)),
    (
        "two options' word, preference decides",
        "#BuyCandle orange",
        CANDLE,
        {"colour": "orange"},
        ok(12, prefs=True),
    ),
    ("a numeric value is a value", "#BuyShoe 42", SHOE, None, ok(22)),
    ("quantity and numeric value", "#BuyShoe 3 42", SHOE, None, ok(22, 3)),
    ("a number that is a value is never the quantity", "#BuyShoe 2 40", SHOE, None, needed()),
    ("no options: quantity only", "#BuyTeeShirt 2 large", PLAIN, None, ok(None, 2)),
    ("no options: words ignored", "#BuyTeeShirt M blue", PLAIN, None, ok(None)),
    (
        "no options: above the limit",
        "#BuyTeeShirt 3",
        PLAIN,
        None,
        bad_quantity("above_limit", None),
    ),
]


@pytest.mark.parametrize(
    ("text", "offer", "prefs", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_the_grammar_reads_each_post(text, offer, prefs, expected):
    key = "buycandle" if "Candle" in text else "buyshoe" if "Shoe" in text else KEY
    assert read_purchase(text=text, key=key, offer=offer, preferences=prefs) == expected


def test_the_table_holds_at_least_thirty_cases():
    assert len(CASES) >= 30


def test_only_the_words_after_the_purchase_hashtag_count():
    assert words_after("big L #BuyTeeShirt M", KEY) == ["M"]
    assert words_after("#BuyOther M", KEY) is None
