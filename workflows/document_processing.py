"""Batch document processing, the pack's main job: ingest -> parse -> protect -> classify -> decide -> policy
-> approval -> act -> audit, fanned out over chunks with ``map_task``.

Run locally::

    python -m tasks.documents.corpus --out /tmp/corpus --n 40 --seed 7
    pyflyte run workflows/document_processing.py process_documents --source /tmp/corpus

The run waits at the approval gates for the requests it opened; decide them from another terminal with
``aios approvals list`` / ``aios approvals approve <id> --as user:bob``. Requests left undecided time out
after ``options.approval_timeout_s`` (no action). The summary is printed as one JSON line
(``AIOS_BATCH_SUMMARY {...}``) and returned with the result and quarantine tables.
"""

from __future__ import annotations

import datetime as dt

from flytekit import CronSchedule, map_task, workflow
from pandera.typing import DataFrame

from flytekitplugins.aios_approvals import approval_gate
from flytekitplugins.aios_connectors.system_of_record import SystemOfRecordConfig, SystemOfRecordTask
from tasks.documents import report, stages
from tasks.documents.schemas import BatchSummary, ProcessingOptions, QuarantineRow, ResultRow
from workflows.launch_plans import described_launch_plan
from workflows.notifications import on_failure

# Longer than the longest request timeout (24 h, see ProcessingOptions): requests expire first, so an
# unanswered request ends as "approval_timed_out" for its document instead of failing the batch.
GATE_TIMEOUT = dt.timedelta(hours=25)

post_actions = SystemOfRecordTask(name="post_document_actions", config=SystemOfRecordConfig(table=report.ACTIONS_TABLE))

# The per-chunk stages, mapped over the chunks with ``options`` bound (not mapped). Built once here rather than in
# the workflow body: flytekit re-runs the body on every local execution and building an array-node task derives
# its typed interface again (about 45 ms each). ``bound_inputs`` is what flytekit's own ArrayNodeMapTaskResolver
# passes when it rebuilds a map task in the pod, and what ``functools.partial(task, options=...)`` sets: same
# task names, interfaces and bindings as before.
parse_chunks = map_task(stages.parse_protect, bound_inputs={"options"})
classify_chunks = map_task(stages.classify, bound_inputs={"options"})
decide_chunks = map_task(stages.decide, bound_inputs={"options"})


@workflow
def process_documents(
    source: str, options: ProcessingOptions = ProcessingOptions()
) -> tuple[BatchSummary, DataFrame[ResultRow], DataFrame[QuarantineRow]]:
    """Process a batch of documents end to end, under policy, approvals and audit.

    Args:
        source: a local folder, an fsspec URL (s3://bucket/prefix/) or a database URL (sqlite:///x.db, postgresql://...).
        options: chunk size, file size limit, model thresholds, approval timeout and cost figures.
    """
    chunks = stages.ingest(source=source, options=options)
    protected = parse_chunks(chunk=chunks, options=options)
    classified = classify_chunks(docs=protected, options=options)
    decided_parts = decide_chunks(docs=classified, options=options)
    decided = stages.gather(parts=decided_parts)
    auto = post_actions(actions=stages.auto_actions(decided=decided, options=options))
    pay_ids = stages.requests_for(decided=decided, gate="payment-signoff", posted_before=auto.posted)
    rev_ids = stages.requests_for(decided=decided, gate="document-review", posted_before=auto.posted)
    payment = approval_gate("payment-signoff", request_ids=pay_ids, timeout=GATE_TIMEOUT)
    review = approval_gate("document-review", request_ids=rev_ids, timeout=GATE_TIMEOUT)
    later = post_actions(
        actions=stages.approved_actions(decided=decided, payment=payment, review=review, options=options)
    )
    posted = stages.counts(
        posted=auto.posted,
        already_posted=auto.already_posted,
        more_posted=later.posted,
        more_already=later.already_posted,
        refused=auto.refused,
        more_refused=later.refused,
    )
    return stages.summarize(
        decided=decided, payment=payment, review=review, posted=posted, source=source, options=options
    )


process_documents_nightly = described_launch_plan(
    process_documents,
    "process_documents_nightly",
    schedule=CronSchedule(schedule="0 2 * * *"),
    default_inputs={"source": "s3://aios-documents/inbox/", "options": ProcessingOptions(approval_timeout_s=8 * 3600)},
    notifications=on_failure(),
)
