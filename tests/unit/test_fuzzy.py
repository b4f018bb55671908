"""The picker's fuzzy matcher (tracing/query/fuzzy.py): exact tiers, scores, positions, ranking."""

from __future__ import annotations

from tracing.query import fuzzy
from tracing.query.fuzzy import PREFIX, SCATTERED, SUBSTRING, WORD, Field, match, terms


def ranked(query: str, texts: list[str]) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """(text, tier, score, positions) of the texts that match, best first (stable)."""
    found = []
    for text in texts:
        m = match(terms(query), [Field.of(text)])
        if m is not None:
            found.append((text, m.tier, m.score, m.positions_in(0)))
    found.sort(key=lambda f: (f[1], f[2]), reverse=True)
    return found


def test_ranking_prefix_then_word_start_then_substring_then_scattered():
    texts = ["sshd", "python", "systemd-helper", "bash", "/bin/sh", "sh -c ls"]
    assert ranked("sh", texts) == [
        ("sh -c ls", PREFIX, 52, (0, 1)),  # 16 + 2*8 (a word start, counted double) + 20
        ("/bin/sh", WORD, 52, (5, 6)),
        ("sshd", SUBSTRING, 36, (1, 2)),  # 16 + 16 + 4 (a run)
        ("bash", SUBSTRING, 36, (2, 3)),
        ("systemd-helper", SCATTERED, 33, (2, 8)),  # 16 + 16 + 8 (after "-") - 7 (a gap of 5)
    ]


def test_a_scattered_match_takes_the_shortest_window_and_scores_word_starts():
    # Forward: p, then g at 4, then the first d after it (the "D" at 10); backward from
    # there: the g and the p just before, so the window is as short as it can end there.
    assert ranked("pgd", ["postgres -D /data"]) == [
        ("postgres -D /data", SCATTERED, 60, (0, 4, 10))]
    # Word starts outweigh shorter gaps: 32 + (24 - 4) + (24 - 6) against 32 + 13 + 13.
    assert ranked("mhs", ["mxhxs", "my-http-server"]) == [
        ("my-http-server", SCATTERED, 70, (0, 3, 8)),
        ("mxhxs", SCATTERED, 58, (0, 2, 4)),
    ]


def test_a_whole_occurrence_at_a_word_start_is_preferred_to_an_earlier_one():
    m = match(terms("http"), [Field.of("xhttp python3 -m http.server")])
    assert m is not None
    assert (m.tier, m.positions_in(0)) == (WORD, (17, 18, 19, 20))


def test_case_insensitive_and_positions_index_the_text_shown():
    m = match(terms("STAN"), [Field.of("İstanbul")])  # "İ" lower-cases to two characters
    assert m is not None
    assert m.positions_in(0) == (1, 2, 3, 4)
    assert match(terms("ab"), [Field.of("Ab")]) is not None


def test_every_term_must_match_in_some_field():
    fields = [Field.of("python3 -m http.server 8080"), Field.of("bob"), Field.of("5678")]
    m = match(terms("bob http"), fields)
    assert m is not None
    assert m.tier == WORD  # the weaker of PREFIX (bob, the user) and WORD (http)
    assert m.spans == ((1, (0, 1, 2)), (0, (11, 12, 13, 14)))
    assert m.positions_in(1) == (0, 1, 2) and m.positions_in(2) == ()
    assert match(terms("bob nginx"), fields) is None
    assert match(terms(""), fields) == fuzzy.Match(PREFIX, 0, ())


def test_a_tie_between_fields_goes_to_the_first():
    m = match(terms("nginx"), [Field.of("nginx: worker process"), Field.of("nginx")])
    assert m is not None and m.spans == ((0, (0, 1, 2, 3, 4)),)


def test_terms_are_bounded():
    long = "a" * 500 + " " + " ".join("bcdefghijk")
    got = terms(long)
    assert len(got) == fuzzy.MAX_TERMS
    assert got[0].text == "a" * fuzzy.MAX_TERM
    assert [t.text for t in got[1:]] == list("bcdefgh")


def test_no_match_and_repetitive_text_are_answered_by_scanning_not_searching():
    # The old matcher enumerated every combination of positions: 512 "a"s and a query of
    # 40 "a"s and a "b" is beyond any machine that way; here it is two passes of find.
    text = "a" * 512
    assert match(terms("a" * 40 + "b"), [Field.of(text)]) is None
    m = match(terms("a" * 40), [Field.of(text)])
    assert m is not None and (m.tier, m.positions_in(0)) == (PREFIX, tuple(range(40)))
    m = match(terms("a-a"), [Field.of("a" * 300 + "-" + "a" * 200)])
    assert m is not None and m.positions_in(0) == (299, 300, 301)


def test_a_hidden_fields_rank_counts_but_the_shown_field_is_highlighted():
    fields = [Field.of("/usr/bin/python3 -m kafka.worker"), Field.of("kafka")]
    m = match(terms("kafka"), fields, shown=1)
    assert m is not None
    assert (m.tier, m.spans) == (PREFIX, ((0, (20, 21, 22, 23, 24)),))
    m = match(terms("kaf"), [Field.of("/bin/true"), Field.of("kafka")], shown=1)
    assert m is not None and (m.tier, m.spans) == (PREFIX, ((1, (0, 1, 2)),))
