"""Ingestion throughput: N events from JSONL and CSV into a fresh shop, median of R runs.

    python -m bench.ingest --events 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from bench.common import median, table, write_json
from shoprank.data.ingest import ingest_file
from shoprank.store import open_store

TYPES = ("view", "view", "view", "click", "add_to_cart", "purchase")


def make_events(n: int, folder: Path) -> dict[str, Path]:
    start = time.time() - 30 * 86_400
    rows = [
        {"event_id": f"e{i}", "user_id": f"u{i % 50_000}", "item_id": f"p{(i * 7919) % 20_000}",
         "type": TYPES[i % len(TYPES)], "timestamp": round(start + i * 2.0, 3)}
        for i in range(n)
    ]
    jsonl = folder / "events.jsonl"
    with jsonl.open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    csv_path = folder / "events.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return {"jsonl": jsonl, "csv": csv_path}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        files = make_events(args.events, Path(tmp))
        for fmt, path in files.items():
            times = []
            for run in range(args.repeats):
                with open_store(Path(tmp) / f"{fmt}-{run}.sqlite") as store:
                    began = time.perf_counter()
                    report = ingest_file(store, "events", path)
                    times.append(time.perf_counter() - began)
                    assert report.stored == args.events
            took = median(times)
            results.append({"format": fmt, "events": args.events, "median_s": took, "runs_s": times,
                            "events_per_s": args.events / took})
    print(table(["format", "events", "median s", "events/s", "target"],
                [[r["format"], f"{r['events']:,}", f"{r['median_s']:.1f}", f"{r['events_per_s']:,.0f}", "< 60 s"]
                 for r in results]))
    print(f"written to {write_json('ingest', {'results': results})}")


if __name__ == "__main__":
    main()
