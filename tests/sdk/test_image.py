"""The SDK's Image: construction, validation, to_dict/from_dict/to_json/update."""

import json

import pytest

from localtailr.sdk.image import Image


def test_defaults_and_round_trip():
    image = Image()
    assert image.python_version == "auto" and image.python_requirements == ""
    data = image.to_dict()
    assert set(data) == {"python_version", "python_requirements", "build_script_pre",
                         "build_script_post", "branch_name", "commit_hash", "path_to_repo",
                         "path_to_module"}
    full = Image("3.11", ["six", "attrs>=20"], "RUN echo hi", "ENV A=1", branch_name="main")
    assert Image.from_dict(full.to_dict()) == full
    assert json.loads(full.to_json())["python_requirements"] == ["six", "attrs>=20"]
    assert full.spec().requirements == ("attrs>=20", "six")
    assert full.spec().env == {"A": "1"}


def test_validation_at_construction():
    with pytest.raises(ValueError, match="'six=='"):
        Image(python_requirements="six==")
    with pytest.raises(ValueError, match="line 1.*FROM"):
        Image(build_script_pre="FROM python:3.12")
    with pytest.raises(TypeError):
        Image(python_version=3.12)


def test_files_are_read_at_construction(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six\n# comment\nattrs\n")
    pre = tmp_path / "pre.Dockerfile"
    pre.write_text("RUN echo pre\n")
    image = Image(python_requirements=str(reqs), build_script_pre=str(pre))
    assert image.python_requirements == "six\nattrs"
    assert image.build_script_pre == "RUN echo pre\n"


def test_update():
    image = Image(python_requirements="six")
    image.update(python_requirements="attrs", branch_name="dev")
    assert image.python_requirements == "attrs" and image.branch_name == "dev"
    assert image.spec().requirements == ("attrs",)
    with pytest.raises(AttributeError):
        image.update(no_such_attribute=1)
    with pytest.raises(TypeError):
        image.update(build_script_pre=42)
    with pytest.raises(TypeError):
        image.update(branch_name=1)
    with pytest.raises(ValueError):
        image.update(python_requirements="attrs>>1")
    assert image.python_requirements == "attrs"  # a failed update changes nothing
