"""``core/names.py``: keys found valid are remembered, and only what cannot lie is."""

from __future__ import annotations

import pytest

from localtailr.core import names

BAD = "bad\x00key"


def test_a_remembered_key_never_lets_a_bad_one_through():
    class Liar(str):  # equal to anything, hashed like the bad key
        def __eq__(self, other):
            return True

        def __hash__(self):
            return hash(BAD)

    assert names.key(Liar("fine")) == "fine"
    with pytest.raises(ValueError, match="invalid key"):
        names.key(BAD)


def test_the_memory_of_valid_keys_is_bounded_and_answers_the_same():
    for i in range(names.MAX_VALID_KEYS + 10):
        assert names.key(f"k{i}") == f"k{i}"
    assert len(names._VALID_KEYS) <= names.MAX_VALID_KEYS
    assert names.key("k5") == "k5"  # again, from memory or not
    for bad in ("", "x" * 513, "tab\there", BAD, 5, None, "\ud800"):
        with pytest.raises(ValueError, match="invalid secret"):
            names.key(bad, "secret")
