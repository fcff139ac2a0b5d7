"""A batch job saved with a schedule gets its schedules row, in every way a version becomes current."""

from __future__ import annotations

from support import jobs_entry

from localtailr import Schedule, store
from localtailr.platform import jobs
from localtailr.platform.context import context
from localtailr.runtime.schedule import scheduler
from localtailr.sdk.job import BatchJob


def schedule_row(home, name, env="dev"):
    return store.connection(home).execute(
        "SELECT s.* FROM schedules s JOIN jobs j USING (job_id) WHERE j.name = ? AND j.environment = ?",
        (name, env),
    ).fetchone()


def test_batch_job_schedule_follows_the_current_version(localtailr_home):
    home = localtailr_home.home
    BatchJob("Nightly Report", jobs_entry.hello, schedule=Schedule(at_hours=[2])).save()
    row = schedule_row(home, "nightly-report")
    assert row["cron"] == "0 0 2 * * *" and row["next_fire"] is not None
    assert jobs.get(context(), "nightly-report")["next_fire"] == row["next_fire"]

    BatchJob("Nightly Report", jobs_entry.hello).save()  # version 2: no schedule
    assert schedule_row(home, "nightly-report") is None

    jobs.set_version(context(), "nightly-report", 1)  # back to the scheduled version
    assert schedule_row(home, "nightly-report")["cron"] == "0 0 2 * * *"

    jobs.promote(context(), "nightly-report")
    assert schedule_row(home, "nightly-report", "pre")["cron"] == "0 0 2 * * *"


def test_scheduled_batch_job_fires_when_the_clock_passes(localtailr_home):
    home = localtailr_home.home
    # through the service layer: BatchJob.save() would start the daemon, whose own ticks
    # this test's ticks would race
    jobs.save(context(), BatchJob("Every Minute", jobs_entry.hello,
                                  schedule=Schedule(cron_expression="0 * * * * *")).to_dict())
    due = schedule_row(home, "every-minute")["next_fire"]
    assert scheduler.tick(home, due - 1) == []  # nothing due yet
    before = store.connection(home).execute("SELECT count(*) FROM runs").fetchone()[0]
    scheduler.tick(home, due + 0.5)
    after = store.connection(home).execute(
        "SELECT trigger, scheduled_for FROM runs ORDER BY run_id").fetchall()
    assert len(after) == before + 1
    assert after[-1]["trigger"] == "schedule" and after[-1]["scheduled_for"] == due
