"""Build scripts: RUN and ENV lines, and a clear refusal of the rest."""

import pytest

from localtailr.core.buildscript import parse_build_script


def test_run_and_env_forms():
    script = parse_build_script(
        "# set up\n"
        "\n"
        "ENV A=1 B=\"two words\"\n"
        "ENV LEGACY value with spaces\n"
        "run echo one && \\\n"
        "    echo two\n"
        'RUN ["echo", "exec form"]\n'
        "ENV C=${A}-$B D=$UNDEFINED\n"
    )
    assert script.run_commands == ["echo one && echo two", "echo 'exec form'"]
    assert script.env() == {"A": "1", "B": "two words", "LEGACY": "value with spaces",
                            "C": "1-two words", "D": "$UNDEFINED"}
    assert [i.line for i in script.instructions] == [3, 4, 5, 7, 8]


def test_empty():
    assert not parse_build_script("")
    assert not parse_build_script(None)
    assert not parse_build_script("# only a comment\n\n")


@pytest.mark.parametrize("line", ["FROM python:3.12", "COPY . /app", "WORKDIR /app",
                                  "EXPOSE 80", "echo no instruction"])
def test_other_instructions_are_refused_with_the_line(line):
    with pytest.raises(ValueError) as info:
        parse_build_script(f"RUN echo ok\n# comment\n{line}\n")
    message = str(info.value)
    assert "line 3" in message and line in message and "RUN" in message


def test_malformed_env_and_run():
    with pytest.raises(ValueError, match="line 1"):
        parse_build_script("ENV 1BAD=x\n")
    with pytest.raises(ValueError, match="needs a value"):
        parse_build_script("ENV ONLY_NAME\n")
    with pytest.raises(ValueError, match="needs a command"):
        parse_build_script("RUN\n")
    with pytest.raises(ValueError, match="exec form"):
        parse_build_script('RUN ["echo", 1]\n')


def test_file_path(tmp_path):
    path = tmp_path / "pre.Dockerfile"
    path.write_text("ENV X=1\nRUN true\n")
    assert parse_build_script(str(path)).env() == {"X": "1"}
    assert parse_build_script(path).run_commands == ["true"]
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("RUN true\nADD x y\n")
    with pytest.raises(ValueError, match=r"bad.Dockerfile.*line 2"):
        parse_build_script(str(bad))
    with pytest.raises(ValueError, match="not found"):
        parse_build_script(str(tmp_path / "missing.Dockerfile"))


def test_canonical_ignores_layout():
    a = parse_build_script("# x\nRUN echo hi\nENV A=1\n")
    b = parse_build_script("\nrun   echo hi\n\nENV A=1")
    assert a.canonical() == b.canonical()
