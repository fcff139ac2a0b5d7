"""``core/user_code.py``: the one loader of user code, and how it names a ``__main__`` script."""

from __future__ import annotations

import sys

import pytest

from localtailr.core import user_code
from localtailr.core.task_call import load_function
from localtailr.runtime.process import bootstrap

SCRIPT = """
import os
LOADS = int(os.environ.get("LOADS_SEEN", "0"))
os.environ["LOADS_SEEN"] = str(LOADS + 1)

def f():
    return __name__

if __name__ == "__main__":
    raise SystemExit("the __main__ block ran")
"""


@pytest.fixture
def script(tmp_path, monkeypatch):
    path = tmp_path / "my_script.py"
    path.write_text(SCRIPT)
    monkeypatch.delenv("LOADS_SEEN", raising=False)
    yield str(path)
    sys.modules.pop(user_code.main_alias(str(path)), None)


def test_a_main_script_has_one_name_for_a_job_and_a_task(script, tmp_path):
    """A job's process (bootstrap) and a workflow task (task_call) load a ``__main__`` script
    as the same module, once, without running its ``__main__`` block."""
    entry = {"module": "__main__", "qualname": "f", "kind": "script", "file": script,
             "sys_path": str(tmp_path)}
    module = bootstrap.load_module(entry)
    fn = load_function("__main__:f", script)
    assert module.__name__ == user_code.main_alias(script) == fn()
    assert fn.__module__ == module.__name__
    assert module.LOADS == 0 and user_code.import_module("__main__", script) is module


def test_a_script_that_fails_to_load_leaves_nothing(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        user_code.import_module("__main__", str(path))
    assert user_code.main_alias(str(path)) not in sys.modules


def test_a_main_function_without_its_file_is_refused():
    with pytest.raises(ImportError, match="file is unknown"):
        user_code.import_module("__main__", None)


def test_a_module_is_imported_by_name():
    assert user_code.import_module("json") is sys.modules["json"]
