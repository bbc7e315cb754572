"""Child process of the crash test: append records forever, acknowledging each one on stdout.

A line ``<seq> <record id>`` is written only AFTER ``append`` returned (the record is durable).
"""

from __future__ import annotations

import sys

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store


def main(url: str, writer: str) -> None:
    store = open_store(url)
    i = 0
    while True:
        i += 1
        batch = [
            AuditEvent(kind="task", actor=f"service:{writer}", subject=f"{writer}-{i}-{k}") for k in range(1 + i % 3)
        ]
        records = store.append_many(batch) if len(batch) > 1 else [store.append(batch[0])]
        sys.stdout.write("".join(f"{r.seq} {r.record_id}\n" for r in records))
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
