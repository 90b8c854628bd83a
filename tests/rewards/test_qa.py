import pytest

from agentgym.rewards import best_em, best_f1, f1, normalize, substring_match


def test_normalize_drops_case_punctuation_and_articles():
    assert normalize("The  Velmora-Press!") == "velmora press"


@pytest.mark.parametrize(
    ("pred", "gold", "want"),
    [
        ("Paris", "paris", 1.0),
        (
            "the city of Paris",
            "Paris",
            2 * (1 / 3) * 1 / (1 / 3 + 1),
        ),  # p=1/3 (city, of, paris), r=1
        ("London", "Paris", 0.0),
        ("", "", 0.0),  # an empty answer never matches, not even an empty gold
        ("", "the", 0.0),
        (".", "", 0.0),
    ],
)
def test_f1_by_hand(pred, gold, want):
    assert f1(pred, gold) == pytest.approx(want)


def test_best_over_aliases_and_two_way_substring():
    golds = ["Vornoutan, Lythwyth", "Lythwyth Vornoutan"]
    assert best_em("lythwyth vornoutan", golds) == 1.0
    assert best_f1("Vornoutan", golds) == pytest.approx(2 / 3)
    assert substring_match("It was Lythwyth Vornoutan.", golds) == 1.0  # gold in prediction
    assert substring_match("Vornoutan", golds) == 1.0  # prediction in gold
    assert substring_match("", golds) == 0.0 and substring_match("Paris", golds) == 0.0
    # gamed: one letter is inside every gold; a list of every candidate contains every gold
    assert substring_match("o", golds) == 0.0 and substring_match("Lyth", golds) == 0.0
    everyone = " ".join(f"Person{i} Name{i}," for i in range(50)) + " Lythwyth Vornoutan"
    assert substring_match(everyone, golds) == 0.0


def test_an_empty_answer_never_earns_against_degenerate_golds():
    for golds in (["", " "], ["the"], ["."], ["Paris", ""]):
        assert best_em("", golds) == best_f1("", golds) == 0.0
        assert best_em(" the ", golds) == best_f1("...", golds) == 0.0
