import json

from devhost.transcript_match import expected_words, transcript_words, word_accuracy

TRANSCRIPT = """[00:00:00.510] Agent: Thank you for calling.
[00:00:05.970] Customer: Hi, I was charged twice!
"""


def test_transcript_words_drop_times_speakers_and_punctuation():
    assert transcript_words(TRANSCRIPT) == [
        "thank",
        "you",
        "for",
        "calling",
        "hi",
        "i",
        "was",
        "charged",
        "twice",
    ]


def test_word_accuracy():
    expected = ["a", "b", "c", "d"]
    assert word_accuracy(expected, ["a", "b", "c", "d"]) == 1.0
    assert word_accuracy(expected, ["a", "b", "x", "d"]) == 0.75
    assert word_accuracy(expected, []) == 0.0
    assert word_accuracy(expected, ["a", "b", "c", "d", "e", "f", "g", "h"]) == 0.5
    assert word_accuracy([], []) == 1.0


def test_expected_words_in_time_order(tmp_path):
    path = tmp_path / "expected.json"
    path.write_text(
        json.dumps(
            {
                "files": {
                    "call.wav": {
                        "turns": [
                            {"start_s": 5.0, "text": "second turn"},
                            {"start_s": 0.5, "text": "First turn"},
                        ]
                    }
                }
            }
        )
    )
    assert expected_words(path) == {"call.wav": ["first", "turn", "second", "turn"]}
    assert expected_words(tmp_path / "missing.json") == {}
