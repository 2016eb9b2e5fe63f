"""``core.lengths``: the one place where outside text is cut to fit its column."""

from core.lengths import fit, fit_key


def test_fit_keeps_what_fits_and_marks_a_cut_with_an_ellipsis():
    assert fit("Kindle", 6) == "Kindle"
    assert fit("Kindle Fire HD", 10) == "Kindle Fi…"
    assert len(fit("x" * 500, 200)) == 200


def test_fit_bounds_the_utf8_size_when_asked_without_splitting_a_character():
    cut = fit("字" * 100, 100, max_bytes=30)
    assert cut == "字" * 9 + "…"
    assert len(cut.encode()) <= 30


def test_fit_key_keeps_distinct_long_ids_distinct_and_equal_ones_equal():
    a, b = "u" * 3000 + "a", "u" * 3000 + "b"
    assert fit_key(a, 2048) != fit_key(b, 2048)
    assert fit_key(a, 2048) == fit_key(a, 2048)
    assert len(fit_key(a, 2048)) <= 2048
    assert fit_key("https://example.social/users/alice", 2048) == (
        "https://example.social/users/alice"
    )


def test_fit_key_bounds_bytes_so_an_index_entry_holds():
    key = fit_key("字" * 2048, 2048)
    assert len(key.encode()) <= 2048
    assert key != fit_key("字" * 2047 + "x", 2048)


def test_storable_replaces_nul_and_lone_surrogates_and_keeps_everything_else():
    from core.lengths import storable, storable_json

    assert storable("a\x00b") == "a\ufffdb"
    assert storable("\ud800 hello") == "\ufffd hello"
    assert storable("ok 😀 café") == "ok 😀 café"
    assert storable_json({"t\x00": ["x\udfff", 1, None]}) == {"t\ufffd": ["x\ufffd", 1, None]}
