"""core/settings.py: one table of every LOCALTAILR_* variable, read at call time, documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from localtailr.core import settings
from localtailr.core.settings import JOB_CONTRACT, SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[2]
# LOCALTAILR_PAD only pads a forked child's environment block in place (fork server)
INTERNAL = {"LOCALTAILR_PAD"}


def test_every_name_in_the_package_is_in_the_table():
    known = {s.name for s in SETTINGS + JOB_CONTRACT} | INTERNAL
    used = set()
    for path in (ROOT / "localtailr").rglob("*.py"):
        used |= set(re.findall(r"LOCALTAILR_[A-Z_]*[A-Z]", path.read_text()))
    used = {n for n in used if not (n + "_").startswith(settings.PARAM_PREFIX)}
    assert used - known == set()


def test_the_docs_table_lists_every_setting_with_its_default():
    page = (ROOT / "docs" / "settings.md").read_text()
    for s in SETTINGS:
        row = next((line for line in page.splitlines() if line.startswith(f"| `{s.name}` |")), None)
        assert row is not None, s.name
        assert (f"`{s.default}`" in row) if s.default else ("(unset)" in row or "~/.localtailr" in row), row
        assert s.meaning in row, row
    for s in JOB_CONTRACT:
        assert f"| `{s.name}` |" in page.split("## What localtailr sets")[1], s.name


def test_read_at_call_time_and_bad_values_named(monkeypatch):
    monkeypatch.setenv("LOCALTAILR_STOP_GRACE", "0.5")
    assert settings.STOP_GRACE.number() == 0.5
    monkeypatch.delenv("LOCALTAILR_STOP_GRACE")
    assert settings.STOP_GRACE.number() == 5.0
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("LOCALTAILR_STOP_GRACE", bad)
        with pytest.raises(ValueError, match=f"LOCALTAILR_STOP_GRACE='{re.escape(bad)}'"):
            settings.STOP_GRACE.number()
    monkeypatch.setenv("LOCALTAILR_PORT", "80x")
    with pytest.raises(ValueError, match="LOCALTAILR_PORT='80x': use a whole number"):
        settings.PORT.whole()
    flag = Setting("X_FLAG", "", "")
    assert [flag.flag({"X_FLAG": v}) for v in ("1", "yes", "0", "no", "", "maybe")] == \
        [True, True, False, False, None, None]


def test_a_setting_changed_after_import_takes_effect(monkeypatch, tmp_path):
    from localtailr.runtime.process import supervised  # imported before the change

    log = tmp_path / "stdout"
    log.write_bytes(b"x" * 2000)
    monkeypatch.setenv("LOCALTAILR_LOG_CAP", "4096")
    assert not supervised.rotate(log)
    monkeypatch.setenv("LOCALTAILR_LOG_CAP", "1000")
    assert supervised.rotate(log) and (tmp_path / "stdout.1").stat().st_size == 2000
