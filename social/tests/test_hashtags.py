"""Hashtag extraction against twitter-text's conformance suite, and the matching key (DESIGN §4)."""

from pathlib import Path

import pytest
import yaml

from social.hashtags import extract_hashtags, hashtag_key, is_valid_hashtag

SUITE = Path(__file__).parent / "fixtures" / "twitter-text"
EXTRACT = yaml.safe_load((SUITE / "extract.yml").read_text(encoding="utf-8"))["tests"]
VALIDATE = yaml.safe_load((SUITE / "validate.yml").read_text(encoding="utf-8"))["tests"]


def _cases(*keys: str, source: dict = EXTRACT) -> list:
    return [
        pytest.param(case, id=f"{key}: {case['description']}")
        for key in keys
        for case in source[key]
    ]


def test_the_suite_is_loaded_in_full():
    # Guards against an empty or truncated fixture making the parametrised tests vacuous.
    assert len(EXTRACT["hashtags"]) >= 60
    assert len(EXTRACT["hashtags_from_astral"]) == 3
    assert len(EXTRACT["hashtags_with_indices"]) == 8


@pytest.mark.parametrize("case", _cases("hashtags", "hashtags_from_astral"))
def test_extracts_hashtags_as_twitter_text_does(case):
    assert [tag.text for tag in extract_hashtags(case["text"])] == case["expected"]


@pytest.mark.parametrize("case", _cases("hashtags_with_indices"))
def test_extracts_hashtag_indices_as_twitter_text_does(case):
    found = [
        {"hashtag": t.text, "indices": [t.start, t.end]} for t in extract_hashtags(case["text"])
    ]
    assert found == case["expected"]


@pytest.mark.parametrize("case", _cases("hashtags", source=VALIDATE))
def test_validates_hashtags_as_twitter_text_does(case):
    assert is_valid_hashtag(case["text"].removeprefix("#")) is case["expected"]


@pytest.mark.parametrize(
    ("written", "campaign"),
    [
        ("buykindlefirehd", "BuyKindleFireHD"),
        ("BUYKINDLEFIREHD", "BuyKindleFireHD"),
        ("".join(chr(ord(c) + 0xFEE0) for c in "BuyKindleFireHD"), "BuyKindleFireHD"),  # full width
        ("Straße", "STRASSE"),  # casefold, not lower
        ("ﬁre", "Fire"),  # the ligature decomposes under NFKC
    ],
)
def test_key_matches_case_and_width_variants(written, campaign):
    assert hashtag_key(written) == hashtag_key(campaign)


@pytest.mark.parametrize(
    ("written", "campaign"),
    [
        ("Café", "Cafe"),  # accents are not folded
        ("BuyXbox360Bundl\u0435", "BuyXbox360Bundle"),  # Cyrillic ie looks like e
        ("BuyKindleF\u0456reHD", "BuyKindleFireHD"),  # Ukrainian i
        ("BuyKindle\u200bFireHD", "BuyKindleFireHD"),  # a zero-width space is kept
    ],
)
def test_key_keeps_look_alikes_and_accents_apart(written, campaign):
    assert hashtag_key(written) != hashtag_key(campaign)


def test_zero_width_space_ends_the_hashtag():
    assert [t.text for t in extract_hashtags("#BuyKindle\u200bFireHD")] == ["BuyKindle"]


@pytest.mark.parametrize("tag", ["BuyKindleFireHD", "Buy_Xbox360", "ÉtéBuy", "買う"])
def test_valid_campaign_hashtags(tag):
    assert is_valid_hashtag(tag)


@pytest.mark.parametrize("tag", ["", "12345", "Buy Kindle", "Buy-Kindle", "Buy#Kindle", "Buy!"])
def test_invalid_campaign_hashtags(tag):
    assert not is_valid_hashtag(tag)
