"""genre.evaluate: metrics and the text report on a hand-made example, numbers worked out by hand."""
from __future__ import annotations

import json

import pytest

from genre.evaluate import classification_report, format_report

# 6 clips, 3 genres:     true  a a a b b c
#                   predicted  a a b b c c
# confusion (rows true, columns predicted): a [2 1 0], b [0 1 1], c [0 0 1]
# precision: a 2/2 = 1, b 1/2, c 1/2      recall: a 2/3, b 1/2, c 1/1
# f1: a 2*1*(2/3)/(5/3) = 0.8, b 0.5, c 2*(1/2)*1/(3/2) = 2/3
# accuracy 4/6; balanced accuracy = mean recall = (2/3 + 1/2 + 1)/3 = 13/18
TRUE = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]


@pytest.fixture
def report():
    return classification_report(TRUE, PRED, ["a", "b", "c"])


def test_metrics_by_hand(report):
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["balanced_accuracy"] == pytest.approx(13 / 18)
    assert report["labels"] == ["a", "b", "c"]
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    expected = {"a": (1.0, 2 / 3, 0.8, 3), "b": (0.5, 0.5, 0.5, 2), "c": (0.5, 1.0, 2 / 3, 1)}
    for label, (p, r, f, s) in expected.items():
        m = report["per_class"][label]
        assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p, r, f))
        assert m["support"] == s
    assert json.loads(json.dumps(report)) == report  # plain JSON types only (it goes in card.json)


def test_a_genre_without_clips_is_listed_but_not_averaged():
    report = classification_report(TRUE, PRED, ["a", "b", "c", "d"])
    assert report["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["balanced_accuracy"] == pytest.approx(13 / 18)  # d has no support: left out
    assert report["confusion"][3] == [0, 0, 0, 0] and [row[3] for row in report["confusion"]] == [0, 0, 0, 0]
    wrong = classification_report(["a", "b"], ["d", "d"], ["a", "b", "d"])
    assert wrong["accuracy"] == 0.0 and wrong["per_class"]["d"]["precision"] == 0.0
    assert wrong["confusion"] == [[0, 0, 1], [0, 0, 1], [0, 0, 0]]


def test_format_report_text(report):
    assert format_report(report).splitlines() == [
        "clips: 6   accuracy: 0.667   balanced accuracy: 0.722",
        "",
        "genre        precision  recall      f1  support",
        "a                1.000   0.667   0.800        3",
        "b                0.500   0.500   0.500        2",
        "c                0.500   1.000   0.667        1",
        "",
        "confusion (rows: true, columns: predicted)",
        "                 a     b     c",
        "a                2     1     0",
        "b                0     1     1",
        "c                0     0     1",
    ]


def test_long_genre_names_are_cut_in_the_confusion_header():
    text = format_report(classification_report(["classical", "hiphop"], ["classical", "classical"],
                                               ["classical", "hiphop"]))
    lines = text.splitlines()
    # classical: predicted twice, right once -> precision 1/2, recall 1/1, f1 2/3; hiphop: never predicted
    assert lines[3] == "classical        0.500   1.000   0.667        1"
    assert lines[4] == "hiphop           0.000   0.000   0.000        1"
    assert lines[-3:] == ["             class hipho", "classical        1     0", "hiphop           1     0"]
