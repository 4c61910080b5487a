"""``make bench``: every benchmark, one run, figures printed as a table.

Sections (each can be run alone: ``python -m bench coldstart trigger dispatcher sdk``):

* ``coldstart``  — a fresh ``import app`` vs a fresh ``import boto3`` (ARCHITECTURE §11),
  and what the first request or run adds (boto3 and Powertools' Logger);
* ``package``    — the Lambda bundle's zipped size (budget ≤ 10 MB);
* ``trigger``    — the trigger's own overhead per run with the demo agent, in-process
  against moto, with the agent's time measured separately and subtracted, and the
  DynamoDB calls per run;
* ``dispatcher`` — the local stack's dispatcher: lateness of ≥ 100 real fires at a
  minute boundary (delivery and run start, relative to the scheduled time);
* ``spend``      — the budget meter's overhead per model call without and with monthly
  caps, and the AWS bill per million runs from the calls a run makes (list prices in
  ``bench/aws_prices.json``);
* ``sdk``        — the official ``langgraph_sdk``'s create + search + delete cycle
  against the local stack and, when ``make bench-peer`` installed it, against the
  official LangGraph dev server on the same machine, in the same run.
"""

from __future__ import annotations

import sys

from bench import coldstart, dispatcher, package_size, sdk_cycle, spend, trigger

SECTIONS = {
    "coldstart": coldstart.run,
    "package": package_size.run,
    "trigger": trigger.run,
    "dispatcher": dispatcher.run,
    "spend": spend.run,
    "sdk": sdk_cycle.run,
}


def main(argv: list[str]) -> int:
    wanted = argv or list(SECTIONS)
    unknown = [w for w in wanted if w not in SECTIONS]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        return 2
    for name in wanted:
        print(f"\n== {name} ==", flush=True)
        SECTIONS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
