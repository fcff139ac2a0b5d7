"""Requirements in every form: strings, lists, files, "auto", script headers."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localtailr.core import requirements
from localtailr.core.requirements import (
    normalise,
    parse_requirements,
    parse_script_header,
    split_specifiers,
    validate,
)


def test_comma_separated_string_keeps_multi_clause_specifiers():
    assert parse_requirements("arrow~=1.3, polars~=0.20") == ["arrow~=1.3", "polars~=0.20"]
    assert parse_requirements("numpy>=1.26,<3, six, requests[socks,security]>=2") == [
        "numpy>=1.26,<3", "six", "requests[socks,security]>=2"]


def test_split_keeps_quoted_marker_commas():
    assert split_specifiers('a; python_version in "3.11, 3.12", b') == [
        'a; python_version in "3.11, 3.12"', "b"]


def test_pip_freeze_text():
    text = """
    # a comment
    six==1.17.0
    attrs==26.1.0  # trailing comment
    pkg-with-hash==1.0 \\
        --hash=sha256:0123456789abcdef
    name @ https://example.com/name-1.0-py3-none-any.whl
    """
    assert parse_requirements(text) == [
        "six==1.17.0", "attrs==26.1.0", "pkg-with-hash==1.0",
        "name @ https://example.com/name-1.0-py3-none-any.whl"]


def test_list_and_empty():
    assert parse_requirements(["six", "attrs>=20,<30"]) == ["six", "attrs>=20,<30"]
    assert parse_requirements("") == []
    assert parse_requirements(None) == []
    assert parse_requirements([]) == []


def test_requirements_txt_path_with_include(tmp_path):
    (tmp_path / "base.txt").write_text("attrs\n")
    (tmp_path / "requirements.txt").write_text("six>=1\n-r base.txt\n")
    assert parse_requirements(str(tmp_path / "requirements.txt")) == ["six>=1", "attrs"]
    assert parse_requirements("requirements.txt", base_dir=tmp_path) == ["six>=1", "attrs"]
    assert parse_requirements(tmp_path / "requirements.txt") == ["six>=1", "attrs"]


def test_pyproject_path_and_auto(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["six>=1", "attrs"]\n')
    assert parse_requirements(str(tmp_path / "pyproject.toml")) == ["six>=1", "attrs"]
    sub = tmp_path / "pkg" / "deep"
    sub.mkdir(parents=True)
    assert parse_requirements("auto", base_dir=sub) == ["six>=1", "attrs"]


def test_auto_without_a_project_is_the_calling_environment(tmp_path):
    assert parse_requirements("auto", base_dir=tmp_path) == []


@pytest.mark.parametrize("bad", ["six==", "numpy>>1", "foo bar", "pkg[", "==1.0", "six,,==1"])
def test_malformed_entry_is_named(bad):
    with pytest.raises(ValueError) as info:
        parse_requirements(bad if "," not in bad else [bad])
    assert "PEP 508" in str(info.value)


def test_malformed_entry_in_a_list_is_named():
    with pytest.raises(ValueError, match=r"'numpy>>1'"):
        parse_requirements(["six", "numpy>>1"])


def test_missing_file_and_pip_options():
    with pytest.raises(ValueError, match="not found"):
        parse_requirements("no-such-requirements.txt")
    with pytest.raises(ValueError, match="pip option"):
        parse_requirements("-e git+https://example.com/x.git")


def test_wrong_type():
    with pytest.raises(TypeError):
        parse_requirements(42)
    with pytest.raises(TypeError):
        parse_requirements(["six", 3])


def test_normalise_is_canonical_and_sorted():
    assert normalise(["Six", "six", "Foo_Bar>=1,<2", "attrs[Tests]"]) == [
        "attrs[tests]", "foo-bar<2,>=1", "six"]
    assert normalise(["b", "a"]) == normalise(["a", "b"])


def test_script_header():
    source = (
        "#!/usr/bin/env python\n"
        "# requirements: arrow~=1.3, polars~=0.20\n"
        "# secrets: API_TOKEN, db/password\n"
        "# requirements: six\n"
        "import os\n"
        "# requirements: not-read-after-code\n"
    )
    header = parse_script_header(source)
    assert header.requirements == ["arrow~=1.3", "polars~=0.20", "six"]
    assert header.secrets == ["API_TOKEN", "db/password"]
    assert header.requires_python is None
    with pytest.raises(ValueError, match="'numpy>>1'"):
        parse_script_header("# requirements: numpy>>1\n")
    with pytest.raises(ValueError, match="secret name"):
        parse_script_header("# secrets: bad!name\n")


def test_pep723_block():
    source = (
        "# /// script\n"
        '# requires-python = ">=3.11"\n'
        "# dependencies = [\n"
        '#   "six>=1",\n'
        '#   "attrs",\n'
        "# ]\n"
        "# ///\n"
        "print('hi')\n"
    )
    header = parse_script_header(source)
    assert header.requirements == ["six>=1", "attrs"]
    assert header.requires_python == ">=3.11"
    with pytest.raises(ValueError, match="more than one"):
        parse_script_header(source + "\n" + source)


# -- the simple forms, read without packaging ------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?", fullmatch=True)
_versions = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,3}", fullmatch=True)
_ops = st.sampled_from(["==", "!=", "<=", ">=", "<", ">", "~="])
_space = st.sampled_from(["", " ", "  "])
_clauses = st.lists(st.tuples(_space, _ops, _space, _versions), max_size=4)


@settings(max_examples=400, deadline=None)
@given(name=_names, clauses=_clauses, pad=_space)
def test_simple_requirements_read_as_packaging_reads_them(name, clauses, pad):
    """A requirement of the simple form is accepted, refused and normalised exactly as
    packaging does (the image key depends on it), with or without packaging."""
    from packaging.requirements import InvalidRequirement, Requirement

    text = pad + name + pad + ",".join(f"{a}{op}{b}{v}" for a, op, b, v in clauses) + pad
    try:
        Requirement(text.strip())
    except InvalidRequirement:
        with pytest.raises(ValueError, match="PEP 508"):
            validate(text)
        return
    assert validate(text) == text.strip()
    fast = requirements._simple(text.strip())
    assert fast is None or fast == requirements._canonical(text.strip())
    assert normalise([text]) == [requirements._canonical(text.strip())]


def test_simple_requirements_do_not_import_packaging():
    code = ("import sys; from localtailr.core.requirements import normalise, validate; "
            "validate('six>=1.0,<2'); print(normalise(['Six_X', 'six >= 1.0 , < 2', 'a~=1.2']), "
            "'packaging' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("] ")
    assert out == ["['a~=1.2', 'six-x', 'six<2,>=1.0'", "False\n"]


def test_a_requirement_beyond_the_simple_form_goes_to_packaging():
    assert requirements._simple("six>=1,>=1.0") is None  # one operator twice: packaging's call
    assert normalise(["six>=1,>=1.0"]) == [requirements._canonical("six>=1,>=1.0")]
    assert normalise(["Attrs[Tests] >= 20 ; python_version >= '3'"]) == [
        'attrs[tests]>=20 ; python_version >= "3"']
