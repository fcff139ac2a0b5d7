"""The simple PEP 723 TOML read without tomllib: what it reads equals tomllib's reading,
and anything else is left to tomllib (None)."""

import subprocess
import sys
import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from localtailr.core import toml_subset
from localtailr.core.requirements import parse_script_header

READ = [
    ('dependencies = ["six", "requests>=2"]\n', {"dependencies": ["six", "requests>=2"]}),
    ('dependencies = [\n  "six",  # why: "x"\n  \'b[c]\',\n]\nrequires-python = ">=3.11"\n',
     {"dependencies": ["six", "b[c]"], "requires-python": ">=3.11"}),
    ("# a comment\n\ndependencies=[]", {"dependencies": []}),
    ('name = "é ü"\t# tab and non-ASCII\n', {"name": "é ü"}),
    ("", {}),
]
LEFT = [
    '[tool.uv]\nexclude-newer = "2024-01-01"\n',  # a table
    'dependencies = ["a\\"b"]\n',  # an escape
    'x = """multi"""\n',
    "a.b = 'dotted'\n",
    '"quoted" = "key"\n',
    "n = 1\n",
    'a = "1"\na = "2"\n',  # a repeated key: tomllib's error
    'a = ["x",,]\n',
    'a = [,]\n',
    'a = "b" trailing\n',
    'a = "b"\r\n',
    'a = "\x01"\n',
]


def test_the_simple_subset_is_read_as_tomllib_reads_it():
    for text, expected in READ:
        assert toml_subset.loads(text) == expected == tomllib.loads(text), text


def test_anything_else_is_left_to_tomllib():
    for text in LEFT:
        assert toml_subset.loads(text) is None, text


PIECES = st.sampled_from(['"', "'", "[", "]", ",", "=", "#", "\n", " ", "\t", "\\", ".",
                          "a", "b-c", "0", "é", "\r", "\x00", "x = ", '"y"', "'z'"])


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_never_reads_differently_from_tomllib(text):
    ours = toml_subset.loads(text)
    if ours is None:
        return
    assert ours == tomllib.loads(text)


def test_a_simple_script_block_is_parsed_without_importing_tomllib():
    source = '# /// script\n# dependencies = ["six", "croniter>=6"]\n# ///\nimport six\n'
    code = ("import sys\nfrom localtailr.core.requirements import parse_script_header\n"
            f"h = parse_script_header({source!r})\n"
            "print(h.requirements, 'tomllib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "['six', 'croniter>=6'] False"


def test_a_block_beyond_the_subset_is_still_read_and_checked():
    source = ('# /// script\n# dependencies = ["six"]\n# [tool.uv]\n# exclude-newer = "2024-01-01"\n'
              "# ///\n")
    assert parse_script_header(source).requirements == ["six"]
    bad = '# /// script\n# dependencies = ["six"\n# ///\n'
    try:
        parse_script_header(bad)
    except ValueError as exc:
        assert "not valid TOML" in str(exc)
    else:
        raise AssertionError("a malformed block was accepted")
