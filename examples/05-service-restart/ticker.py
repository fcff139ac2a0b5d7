"""A service that crashes every few ticks, and the supervisor that restarts it."""

import os
import time

from localtailr import Service


def tick():
    run = os.environ["DATATAILR_RUN_ID"]
    for i in range(3):
        print(f"run {run}: tick {i}", flush=True)
        time.sleep(0.2)
    raise SystemExit(f"run {run}: crashing on purpose")


def main():
    service = Service(name="Ticker", entrypoint=tick)
    service.run()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = service.runs()
        if len([r for r in runs if r["trigger"] == "restart"]) >= 2:
            break
        time.sleep(0.2)
    for r in reversed(service.runs()):
        print(f"run {r['run_id']}: {r['trigger']:<8} {r['state']:<9} {r['reason'] or ''}")
    print("status:", service.status)
    service.stop()
    print("after stop:", service.status)


if __name__ == "__main__":
    main()
