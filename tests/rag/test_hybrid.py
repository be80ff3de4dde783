"""Hybrid ranking (rag/hybrid.py): fusion, pages, period match and the re-scoring boosts."""

from __future__ import annotations

import numpy as np
import pytest

from rag.hybrid import DEFAULT_WEIGHTS, PageHit, Scored, Weights, by_page, fuse, period_matches, rescore
from rag.query import BALANCE, CASH_FLOW, INCOME, QueryIntent, understand


def _lex(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


# ---- fuse ------------------------------------------------------------------------------------

DENSE = [(0, 0.9), (1, 0.5)]


@pytest.mark.parametrize(
    "lexical, weight",
    [(None, 0.3), (_lex(0, 2, 4, 0), 0.0), (np.zeros(0, dtype=np.float32), 0.3)],
)
def test_dense_only_when_no_lexical_signal(lexical, weight):
    got = fuse(DENSE, lexical, weight, depth=10)
    assert [(s.row, s.score, s.dense, s.lexical) for s in got] == [(0, 0.9, 0.9, 0.0), (1, 0.5, 0.5, 0.0)]


def test_dense_only_sorts_by_cosine():
    got = fuse([(3, 0.2), (1, 0.7), (2, 0.4)], None, 0.3, 10)
    assert [s.row for s in got] == [1, 2, 3]


def test_lexical_is_normalised_by_its_best_and_weighted():
    got = {s.row: s for s in fuse(DENSE, _lex(0, 2, 4, 0), 0.3, depth=10)}
    assert got[2].lexical == 1.0  # the best BM25 row is 1.0
    assert got[1].lexical == pytest.approx(0.5)
    assert got[0].lexical == 0.0
    assert got[1].score == pytest.approx(0.5 + 0.3 * 0.5)
    assert got[0].score == pytest.approx(0.9)


def test_lexical_only_row_gets_the_dense_floor():
    got = {s.row: s for s in fuse([(0, 0.9), (1, 0.4), (5, 0.6)], _lex(0, 0, 0, 3, 0, 0), 0.5, depth=10)}
    assert set(got) == {0, 1, 3, 5}  # row 3 was found only by BM25
    assert got[3].dense == pytest.approx(0.4)  # the lowest cosine among the dense candidates
    assert got[3].score == pytest.approx(0.4 + 0.5 * 1.0)


def test_lexical_only_when_there_are_no_dense_candidates():
    got = fuse([], _lex(1, 2, 0), 1.0, depth=10)
    assert [(s.row, s.dense) for s in got] == [(1, 0.0), (0, 0.0)]  # floor 0, zero-score row 2 absent
    assert [s.score for s in got] == pytest.approx([1.0, 0.5])


def test_all_zero_lexical_adds_nothing():
    got = fuse(DENSE, _lex(0, 0, 0), 0.3, depth=10)
    assert [(s.row, s.score, s.lexical) for s in got] == [(0, 0.9, 0.0), (1, 0.5, 0.0)]


def test_lexical_depth_limits_lexical_candidates_only():
    lex = _lex(0, 0, 5, 4, 3, 2, 1)
    got = fuse(DENSE, lex, 0.3, depth=2)
    assert {s.row for s in got} == {0, 1, 2, 3}  # both dense rows kept, the two best BM25 rows added


def test_lexical_can_lift_a_dense_row_over_another():
    # equal cosines; the row whose words match wins
    got = fuse([(0, 0.6), (1, 0.6)], _lex(0.1, 3.0), 0.3, depth=10)
    assert [s.row for s in got] == [1, 0]


def test_fused_ties_are_broken_by_row():
    got = fuse([(7, 0.5), (2, 0.5), (4, 0.5)], _lex(0, 0, 0, 0, 0, 0, 0, 0), 0.3, depth=10)
    assert [s.row for s in got] == [2, 4, 7]
    again = fuse([(4, 0.5), (7, 0.5), (2, 0.5)], _lex(0, 0, 0, 0, 0, 0, 0, 0), 0.3, depth=10)
    assert [s.row for s in again] == [2, 4, 7]  # independent of the dense order


def test_dense_only_ties_keep_the_dense_order():
    # no lexical signal: ties stay in the order the dense search returned them (Python's stable sort)
    assert [s.row for s in fuse([(7, 0.5), (2, 0.5)], None, 0.3, 10)] == [7, 2]


def test_a_row_in_both_lists_appears_once():
    got = fuse([(0, 0.9), (1, 0.5)], _lex(3, 1), 0.3, depth=10)
    assert sorted(s.row for s in got) == [0, 1]
    assert got[0] == Scored(0, pytest.approx(0.9 + 0.3), 0.9, 1.0)


# ---- by_page ---------------------------------------------------------------------------------

KEYS = {0: ("a", 3), 1: ("a", 3), 2: ("a", 4), 3: ("b", 3), 4: ("n", -1), 5: ("n", -1)}


def test_pages_score_as_their_best_passage():
    scored = [Scored(1, 0.9), Scored(3, 0.8), Scored(0, 0.7), Scored(2, 0.6)]
    pages = by_page(scored, KEYS.__getitem__)
    assert [p.key for p in pages] == [("a", 3), ("b", 3), ("a", 4)]
    first = pages[0]
    assert first.score == 0.9 and first.best.row == 1 and first.rows == (1, 0)


def test_best_passage_found_wherever_it_comes_in_the_list():
    pages = by_page([Scored(0, 0.2), Scored(1, 0.95)], KEYS.__getitem__)
    assert len(pages) == 1 and pages[0].best.row == 1 and pages[0].score == 0.95


def test_unpaged_rows_stay_separate_units():
    pages = by_page([Scored(4, 0.9), Scored(5, 0.8), Scored(0, 0.85)], KEYS.__getitem__)
    assert [p.key for p in pages] == [("n#4", -1), ("a", 3), ("n#5", -1)]
    assert [p.rows for p in pages] == [(4,), (0,), (5,)]


def test_same_page_number_in_two_documents_is_two_pages():
    pages = by_page([Scored(0, 0.5), Scored(3, 0.5)], KEYS.__getitem__)
    assert {p.key for p in pages} == {("a", 3), ("b", 3)}


def test_by_page_of_nothing():
    assert by_page([], KEYS.__getitem__) == []


# ---- period_matches --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, period, expected",
    [
        ("What was FY2023 revenue?", "2023", True),
        ("What was FY2023 revenue?", "2022", False),
        ("What was FY2023 revenue?", "2023Q2", False),  # a 10-Q does not answer a year question
        ("What was FY2023 revenue?", "", False),
        ("Change between FY2022 and FY2023", "2023", True),  # the latest year named
        ("Change between FY2023 and FY2022", "2023", True),
        ("Change between FY2023 and FY2022", "2022", False),
        ("Revenue in Q2 2023", "2023Q2", True),  # a quarter named wins over its year
        ("Revenue in Q2 2023", "2023q2", True),
        ("Revenue in Q2 2023", "2023", False),
        ("Revenue in Q2 2023", "2023Q3", False),
        ("Revenue in Q2 2023 and Q3 2023", "2023Q3", True),
        ("What was revenue?", "2023", False),  # no period asked: nothing matches
        ("What was revenue?", "", False),
    ],
)
def test_period_matches(question, period, expected):
    assert period_matches(understand(question), period) is expected


# ---- rescore ---------------------------------------------------------------------------------

CASH_PAGE = "CONSOLIDATED STATEMENTS OF CASH FLOWS (in millions)\nNet income 5,000 ..."
BALANCE_PAGE = "Consolidated Balance Sheets\nTotal assets ..."
PROSE = "Liquidity and capital resources. " * 30  # > 600 characters of prose


def _page(doc: str, page: int, score: float) -> PageHit:
    return PageHit((doc, page), score, Scored(page, score))


def _rescore(pages, intent, texts, periods=None, weights=DEFAULT_WEIGHTS, top=30):
    return rescore(
        pages,
        intent,
        lambda p: texts.get(p.key, ""),
        lambda p: (periods or {}).get(p.key[0], ""),
        weights,
        top,
    )


def test_statement_boost_lifts_the_page_that_prints_the_statement():
    pages = [_page("d", 1, 0.80), _page("d", 2, 0.70)]
    intent = QueryIntent("capex?", statements=(CASH_FLOW,))
    got = _rescore(pages, intent, {("d", 2): CASH_PAGE, ("d", 1): PROSE})
    assert [p.key for p in got] == [("d", 2), ("d", 1)]
    assert got[0].score == pytest.approx(0.70 + DEFAULT_WEIGHTS.statement)
    assert got[1].score == pytest.approx(0.80)


def test_statement_boost_only_for_a_title_in_the_first_600_characters():
    late = PROSE[:600] + CASH_PAGE  # the title starts at character 600
    just_in = PROSE[:590] + CASH_PAGE  # ... and here it ends past 600: not whole in the window
    early = PROSE[:500] + CASH_PAGE
    intent = QueryIntent("capex?", statements=(CASH_FLOW,))
    for text, boosted in [(late, False), (just_in, False), (early, True), (CASH_PAGE, True)]:
        got = _rescore([_page("d", 1, 0.5)], intent, {("d", 1): text})
        assert got[0].score == pytest.approx(0.5 + (DEFAULT_WEIGHTS.statement if boosted else 0.0)), text[
            -80:
        ]


@pytest.mark.parametrize(
    "statements, boosted",
    [((CASH_FLOW,), False), ((BALANCE,), True), ((INCOME, BALANCE), True), ((), False)],
)
def test_statement_boost_only_for_the_statement_asked(statements, boosted):
    got = _rescore([_page("d", 1, 0.5)], QueryIntent("q", statements=statements), {("d", 1): BALANCE_PAGE})
    assert got[0].score == pytest.approx(0.5 + (DEFAULT_WEIGHTS.statement if boosted else 0.0))


def test_boosts_add_up_once_each():
    intent = understand("What was FY2018 capex? Use the cash flow statement.")
    got = _rescore([_page("d", 1, 0.5)], intent, {("d", 1): CASH_PAGE + " " + CASH_PAGE}, {"d": "2018"})
    assert got[0].score == pytest.approx(0.5 + DEFAULT_WEIGHTS.statement + DEFAULT_WEIGHTS.period)


def test_period_boost_prefers_the_document_for_the_period_asked():
    pages = [_page("fy22", 1, 0.62), _page("fy23", 1, 0.60), _page("q2", 1, 0.61)]
    intent = understand("What was FY2023 revenue?")
    got = _rescore(pages, intent, {}, {"fy22": "2022", "fy23": "2023", "q2": "2023Q2"})
    assert [p.key[0] for p in got] == ["fy23", "fy22", "q2"]
    assert got[0].score == pytest.approx(0.60 + DEFAULT_WEIGHTS.period)


def test_zero_weights_change_nothing():
    pages = [_page("fy22", 1, 0.62), _page("fy23", 1, 0.60)]
    intent = QueryIntent("q", years=(2023,), statements=(CASH_FLOW,))
    texts = {("fy23", 1): CASH_PAGE}
    got = _rescore(pages, intent, texts, {"fy23": "2023"}, Weights(statement=0, period=0))
    assert [(p.key, p.score) for p in got] == [(p.key, p.score) for p in pages]
    boosted = _rescore(pages, intent, texts, {"fy23": "2023"})
    assert boosted[0].key == ("fy23", 1)  # the same pages with the default weights do move


def test_rescore_reorders_only_the_head_and_keeps_the_tail():
    pages = [_page("d", i, 1.0 - i / 20) for i in range(6)]
    intent = QueryIntent("q", statements=(CASH_FLOW,))
    texts = {("d", 2): CASH_PAGE, ("d", 4): CASH_PAGE}  # page 4 is past the head: never boosted
    got = _rescore(pages, intent, texts, top=3)
    assert [p.key[1] for p in got] == [2, 0, 1, 3, 4, 5]
    assert got[3:] == pages[3:] and [p.score for p in got[3:]] == [p.score for p in pages[3:]]


def test_rescore_keeps_best_and_rows():
    page = PageHit(("d", 1), 0.5, Scored(9, 0.5), rows=(9, 10))
    got = _rescore([page], QueryIntent("q", statements=(CASH_FLOW,)), {("d", 1): CASH_PAGE})
    assert got[0].best == Scored(9, 0.5) and got[0].rows == (9, 10) and got[0].score > 0.5


def test_rescore_of_nothing():
    assert _rescore([], QueryIntent("q"), {}) == []


def test_default_weights_keep_period_below_statement():
    # documented design rule: a wrong period guess never outweighs the statement evidence
    assert 0 < DEFAULT_WEIGHTS.period < DEFAULT_WEIGHTS.statement
    assert 0 < DEFAULT_WEIGHTS.lexical < 1
