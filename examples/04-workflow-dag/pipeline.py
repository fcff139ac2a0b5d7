"""A scheduled workflow with parallel tasks, a failing check, and a rerun of failures."""

import sys

from localtailr import KV, Schedule, task, workflow


@task()
def extract():
    return {"eu": [3, 1, 2], "us": [10, 30, 20]}


@task()
def clean(rows, region):
    return sorted(rows[region])


@task()
def check(eu, us):
    if KV().get("pipeline.approved") != "yes":
        raise RuntimeError("pipeline.approved is not 'yes': refusing to publish")
    return len(eu) + len(us)


@task()
def publish(count, rundate):
    return f"published {count} rows for {rundate}"


@workflow(name="Regional Pipeline", schedule=Schedule(every_minute=15))
def regional_pipeline():
    rows = extract()
    eu = clean(rows, "eu").alias("clean_eu")
    us = clean(rows, "us").alias("clean_us")
    publish(check(eu, us))


def main(argv):
    KV().put("pipeline.approved", "no")
    if "--local" in argv:
        KV().put("pipeline.approved", "yes")
        print(regional_pipeline(local_run=True))
        return
    run = regional_pipeline()
    print("first run:", run.wait(timeout=300), "-", run.reason)
    for t in run.tasks():
        print(f"  {t['task_name']:<9} {t['state']:<10} {t['reason'] or ''}")
    KV().put("pipeline.approved", "yes")
    again = run.rerun_failed()
    print("rerun of failures:", again.wait(timeout=300))
    for t in again.tasks():
        print(f"  {t['task_name']:<9} {t['state']:<10} {t['reason'] or ''}")
    print("publish said:", again.results()["publish"])


if __name__ == "__main__":
    main(sys.argv[1:])
