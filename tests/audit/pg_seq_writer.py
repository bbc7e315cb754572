"""Child process of the PostgreSQL sequencing tests: appends and prints ``<seq> <record id>`` per durable record.

``pg_seq_writer.py URL NAME COUNT``: COUNT appends (batches of 1-3 events) then exits; COUNT 0 appends forever.
With ``AIOS_TEST_STAGE=1`` it stages instead (``stage_many``) and prints ``staged <subject>`` per acknowledged event.
"""

from __future__ import annotations

import itertools
import os
import sys

from flytekitplugins.aios_audit import AuditEvent
from flytekitplugins.aios_audit.stores import open_store


def main(url: str, writer: str, count: int) -> None:
    store = open_store(url)
    for i in itertools.count(1) if count == 0 else range(1, count + 1):
        batch = [
            AuditEvent(kind="task", actor=f"service:{writer}", subject=f"{writer}-{i}-{k}") for k in range(1 + i % 3)
        ]
        if os.environ.get("AIOS_TEST_STAGE"):
            store.stage_many(batch)
            sys.stdout.write("".join(f"staged {e.subject}\n" for e in batch))
            sys.stdout.flush()
            continue
        records = store.append_many(batch) if len(batch) > 1 else [store.append(batch[0])]
        sys.stdout.write("".join(f"{r.seq} {r.record_id}\n" for r in records))
        sys.stdout.flush()
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
