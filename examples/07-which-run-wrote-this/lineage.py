"""07 — which run wrote this? A two-step workflow, a bad input found through lineage, a restore."""

from localtailr import Blob, task, workflow

RAW, CLEAN, REPORT = "prices/raw.csv", "prices/clean.csv", "prices/report.txt"

GOOD = "day,price\nmon,100\ntue,101\nwed,102\n"
TYPO = "day,price\nmon,100\ntue,10100\nwed,102\n"  # a price keyed in without its decimal point


@task()
def clean():
    """Drop the header and blank lines."""
    lines = Blob().get(RAW).decode().strip().splitlines()[1:]
    Blob().put(CLEAN, "\n".join(line for line in lines if line.strip()) + "\n")
    return len(lines)


@task()
def report(rows):
    prices = [float(line.split(",")[1]) for line in Blob().get(CLEAN).decode().splitlines()]
    Blob().put(REPORT, f"average price over {rows} days: {sum(prices) / len(prices):.2f}\n")


@workflow(name="Price Report")
def price_report():
    report(clean())


def run_once(label):
    run = price_report()
    print(f"{label}: run #{run.run_id} {run.wait(timeout=300)} -> {Blob().get(REPORT).decode().strip()}")


def show_lineage(name):
    """Walk back from the current version of ``name`` to what produced it."""
    seen = Blob().lineage(name)
    print(f"lineage of {name}@{seen['version']}:")
    for node in seen["back"]:
        run = node["run"]
        reads = ", ".join(f"{i['resource']}@{i['version']}" for i in node["read"])
        print(f"  run #{node['run_id']} (task {run['task_name']}) read {reads}")
    for item in seen["back"][-1]["read"]:
        name = item["resource"].removeprefix("blob/")
        v = next(v for v in Blob().history(name) if v["version"] == item["version"])
        print(f"  {name}@{v['version']} was put by {v['who']}, not by a run" if v["run_id"] is None
              else f"  {name}@{v['version']} was written by run #{v['run_id']}")


def main():
    Blob().put(RAW, GOOD)
    run_once("monday's report")
    Blob().put(RAW, TYPO)  # someone uploads a new raw file
    run_once("tuesday's report")

    print("\nThat average is wrong. Which run wrote it, from what?")
    show_lineage(REPORT)
    print("\nWhat changed in the raw file?")
    print(Blob().diff(RAW, 1, 2), end="")

    restored = Blob().restore(RAW, 1)
    print(f"\nrestored {RAW} version 1 as version {restored}")
    run_once("report after the restore")
    print("\nhistory of the report:")
    for v in Blob().history(REPORT):
        print(f"  version {v['version']}: written by run #{v['run_id']} (task {v['task']}):"
              f" {Blob().get(REPORT, version=v['version']).decode().strip()}")


if __name__ == "__main__":
    main()
