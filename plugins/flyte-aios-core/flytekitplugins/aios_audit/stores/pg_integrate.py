"""Batched sequencing for the PostgreSQL audit store: group commit in the style of Tessera's integrate step.

A plain append (no precondition, no claims) is ONE statement and one network round trip,
``CALL aios_audit_append(...)``, a server-side procedure:

* if the log's advisory lock is free (``pg_try_advisory_xact_lock``), it sequences every staged row and its own
  events in one transaction: one durable commit, as cheap as the old single-writer path;
* otherwise it **stages** the events' canonical bytes as one row of ``audit_staged`` and COMMITs (durable: from
  here on a writer that dies still has them sequenced, exactly once, later), then **waits or integrates**: whoever
  wins the lock consumes EVERY staged row (deleted in its transaction), gives them the next sequence numbers and one
  ``recorded_at``, seals them into the hash chain exactly as ``records.seal_many`` does (``sha256`` over the same
  bytes), inserts them into ``audit_log``, leaves a receipt (``first seq, prev chain hash``) in ``audit_receipts``
  for every other writer's row and commits durably. Writers that lost wait on a companion lock in SHARED mode,
  which the integrator's commit releases all at once (no client round trip), then take their receipt, or
  integrate the next batch if their row is still staged.

The call returns the receipt; the client seals its own events from it with ``records.seal_many`` (same function,
same bytes, same hashes), so every call still returns sealed, durable records.

A durable acknowledgement without the sequence number (:func:`stage`, ``store.stage_many``) stages the events'
bytes alone; :func:`integrate_rows` sequences such rows in the integrating client, deriving columns and lineage rows
for the whole batch there (the writers, sixteen of them on two cores, then spend nothing on it). The server-side
integrator stops at the first such row and answers ``RAW``; the appending client then integrates in Python.

A staged row is consumed in the same transaction as its ``audit_log`` rows: an integrator killed mid-batch rolls
back and leaves its rows staged for the next one, and a row is deleted (so sequenced) at most once. The
server-side integrator holds the lock for one statement and its commit; the Python one for its batch's four round
trips (take, two COPYs, done) and the commit.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flytekitplugins.aios_audit.lineage_rows import dict_rows, parse_event, staged_text
from flytekitplugins.aios_audit.lite import execution_key_of
from flytekitplugins.aios_audit.records import _ENTRY, GENESIS, AuditEvent, AuditRecord, _json_time, _to_json

MAX_BATCH_EVENTS = 20_000
"""Events one integrate transaction takes at most (besides :data:`BATCH` staged rows), whatever the rows hold: bulk
writers stage thousands of events a row, and 4,096 such rows at once would not fit an integrator's memory (it would
fail, retry and fail again, and nothing staged would be sequenced). A row larger than this is integrated alone."""
MAX_STAGED_EVENTS = MAX_BATCH_EVENTS
"""Events one ``audit_staged`` row holds at most (a CHECK on the table; ``stage_many`` splits a larger append into
rows of this many, and a larger ``append_many`` is sequenced under the lock). Review R2/F5: one row of 3,000,000
events took the Python integrator past its own 30 s idle timeout, every try, and nothing after it was sequenced."""
WHEN_SKEW_S = 600
"""How far (seconds) the batch time a caller hands to ``aios_audit_integrate``, ``aios_audit_await``,
``aios_audit_append`` or ``aios_audit_done`` may lie from the server's ``clock_timestamp()``: further is refused, so
a writer cannot seal other writers' records back- or forward-dated (generous: clients' clocks drift)."""
WHEN_FORM = r'^"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?\+00:00"$'
"""The only batch time (``p_when``) the routines take: one quoted UTC time as :func:`.records._json_time` writes a
UTC ``datetime`` (``isoformat``: no fraction when it is zero). The bytes are spliced into every entry sealed with
them, other writers' included: review R2 had ``"<time>","event":{forged}`` sealed as a second ``event`` key."""
LOCK = "hashtext(current_schema() || '.aios_audit_log')"
BARRIER = "hashtext(current_schema() || '.aios_audit_log.integrating')"
"""Taken by the integrator after ``LOCK`` if it is free; waiters queue on it in SHARED mode, so the integrator's commit
releases them all at once. Waiting on ``LOCK`` itself would starve the next integrator's try; an integrator never
waits for the barrier (woken waiters hold it until they run), and while none holds it waiters poll every 0.5 ms."""
_WHEN_SQL = f"""
CREATE OR REPLACE FUNCTION aios_audit_when(p_at TIMESTAMPTZ) RETURNS BYTEA LANGUAGE sql STABLE AS $$
  -- a time as records._json_time writes it (isoformat of a UTC datetime: microseconds, none when they are zero)
  SELECT convert_to('"' || replace(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')
                    || '+00:00"', 'UTF8')
$$;
CREATE OR REPLACE FUNCTION aios_audit_honest_time(p_at TIMESTAMPTZ) RETURNS TIMESTAMPTZ LANGUAGE sql STABLE AS $$
  -- a recorded time an honest clock gives (finite, at most {WHEN_SKEW_S} s past the transaction's start), else NULL:
  -- times never decrease along seq, but a head a writer inserted by hand far ahead (or at infinity) is not followed:
  -- it moved every later record's time with it, and then stopped every append (review R6); now(), not the clock,
  -- so that every routine of one transaction judges a head alike (review R7)
  SELECT CASE WHEN isfinite(p_at) AND p_at <= now() + make_interval(secs => {WHEN_SKEW_S}) THEN p_at END
$$;
CREATE OR REPLACE FUNCTION aios_audit_check_when(p_now TIMESTAMPTZ, p_when BYTEA) RETURNS TIMESTAMPTZ
LANGUAGE plpgsql AS $$
DECLARE t TEXT := encode(p_when, 'escape'); at TIMESTAMPTZ;
BEGIN
  -- p_when is spliced into every entry sealed with it, other writers' too: one quoted UTC time as the pack writes
  -- it, equal to p_now (the recorded_at column) when given, and near the server's clock, or nothing is sealed
  IF p_when IS NULL OR octet_length(p_when) > 34 OR t !~ '{WHEN_FORM}' THEN
    RAISE EXCEPTION 'aios audit: refused batch time %: not one quoted UTC time as the pack writes it',
      left(COALESCE(t, 'NULL'), 80) USING ERRCODE = '22007';
  END IF;
  at := substr(t, 2, length(t) - 2)::timestamptz;
  -- the exact bytes the pack writes for that time: no ".000000" (written without a fraction), no second 60 or hour
  -- 24 (PostgreSQL reads them as the next minute or day; Python cannot read them back as written)
  IF p_when IS DISTINCT FROM aios_audit_when(at) THEN
    RAISE EXCEPTION 'aios audit: refused batch time %: not written as the pack writes that time (%)', t,
      convert_from(aios_audit_when(at), 'UTF8') USING ERRCODE = '22007';
  END IF;
  IF p_now IS NOT NULL AND p_now IS DISTINCT FROM at THEN
    RAISE EXCEPTION 'aios audit: refused batch time %: it is not the recorded_at given with it (%)', t, p_now
      USING ERRCODE = '22007';
  END IF;
  IF abs(extract(epoch FROM at - clock_timestamp())) > {WHEN_SKEW_S} THEN
    RAISE EXCEPTION 'aios audit: refused batch time %: more than {WHEN_SKEW_S} s from the server clock (%)',
      t, clock_timestamp() USING ERRCODE = '22007';
  END IF;
  RETURN at;
END $$;
"""
"""The check every routine that seals or consumes staged rows makes of the caller's batch time first."""
_INTEGRATE_SQL = f"""
CREATE OR REPLACE FUNCTION aios_audit_integrate(p_now TIMESTAMPTZ, p_when BYTEA, p_batch INT, p_sid BIGINT)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
  head BIGINT; prev BYTEA; chain BYTEA; leaf BYTEA; entry BYTEA; r RECORD; i INT; one TEXT; first BIGINT;
  head_at TIMESTAMPTZ; mine TEXT := ''; ids BIGINT[] := '{{}}'; bases BIGINT[] := '{{}}'; evs BYTEA[]; cs TEXT[];
  when_text TEXT := convert_from(p_when, 'UTF8') || '|';
BEGIN
  p_batch := GREATEST(COALESCE(p_batch, 1), 1);  -- a caller's 0 or NULL took no row and spun under the lock for ever
  PERFORM aios_audit_check_when(p_now, p_when);  -- the time sealed into other writers' entries: checked first
  IF NOT pg_try_advisory_xact_lock({LOCK}) THEN RETURN NULL; END IF;
  PERFORM pg_try_advisory_xact_lock({BARRIER});  -- never waits for waiters (they may not have run yet)
  SELECT seq, decode(chain_hash, 'hex'), recorded_at INTO head, prev, head_at FROM audit_log ORDER BY seq DESC LIMIT 1;
  head := COALESCE(head, 0); prev := COALESCE(prev, decode('{GENESIS}', 'hex')); first := head;
  -- times never decrease along seq: a caller's clock behind the head's seals the head's time, when that time is one
  -- an honest clock gives (aios_audit_honest_time)
  head_at := aios_audit_honest_time(head_at);
  IF head_at > p_now THEN
    p_now := head_at; p_when := aios_audit_when(head_at); when_text := convert_from(p_when, 'UTF8') || '|';
  END IF;
  FOR r IN SELECT id, events, cols, wants_receipt FROM audit_staged ORDER BY id LIMIT p_batch LOOP
    IF head > first AND head - first + cardinality(r.events) > {MAX_BATCH_EVENTS} THEN
      EXIT;  -- the batch holds as many events as one transaction takes: the next batch has this row
    END IF;
    IF cardinality(r.cols) = 0 THEN  -- staged bytes only (stage()): the Python integrator derives and seals these
      IF mine = '' THEN mine := 'RAW'; END IF;
      EXIT;
    END IF;
    one := when_text || r.id || ':' || (head + 1) || ':' || encode(prev, 'hex');
    IF r.id = p_sid THEN mine := one;
    ELSIF r.wants_receipt THEN  -- a receipt a writer inserted under this id first is replaced, never a dead end
      DELETE FROM audit_receipts WHERE id = r.id;  -- (writers may delete receipts, not update them)
      INSERT INTO audit_receipts VALUES (r.id, one);
    END IF;
    ids := array_append(ids, r.id); bases := array_append(bases, head);
    -- array variables, not the record's fields: PL/pgSQL keeps a variable's array expanded, so evs[i] is O(1),
    -- where r.events[i] copied the whole array at every subscript (a 400-event append took 1.5 s, quadratic)
    evs := r.events; cs := r.cols;
    FOR i IN 1 .. cardinality(evs) LOOP
      head := head + 1;
      -- (a NULL element, staged before the CHECK refused it, is sealed as the JSON null verification reports: an
      -- element no event cannot stop sequencing)
      entry := '\\x7b226576656e74223a'::bytea || COALESCE(evs[i], '\\x6e756c6c'::bytea)
               || '\\x2c227265636f726465645f6174223a'::bytea || p_when
               || convert_to(',"seq":' || head || '}}', 'UTF8');
      leaf := sha256('\\x00'::bytea || entry);
      chain := sha256(prev || leaf);
      INSERT INTO audit_log VALUES (head, p_now, cs[4 * i - 3], cs[4 * i - 2], cs[4 * i - 1],
        cs[4 * i], entry, encode(leaf, 'hex'), encode(prev, 'hex'), encode(chain, 'hex'));
      prev := chain;
    END LOOP;
  END LOOP;
  -- the lineage rows the writers derived (event index, pos, child, parent, rel), at the sequence numbers just given,
  -- in one statement; then the staged rows are consumed: all of it in this transaction (sequenced exactly once)
  -- (unnested once and grouped by five: a subscript of a stored text[] walks it from its start, so s.lin[k] for
  -- every k was quadratic, 0.7 s for one append of 1,000 events with three lineage rows each)
  -- (an event index outside the row's own events is a writer's hand-made row: dropped, so it cannot plant a row at
  -- a later record's seq; a row already at (seq, pos) fails the integration, loud: the projection tables' triggers
  -- refuse a row at a seq the log does not hold yet, so it can only be one planted before they existed, and
  -- skipping it would hide this record's row from every indexed reader)
  INSERT INTO audit_proj_lineage SELECT b.base + l.v[1]::BIGINT, l.v[2]::INT, l.v[3], l.v[4], l.v[5]
    FROM unnest(ids, bases) AS b(id, base) JOIN audit_staged s ON s.id = b.id,
    LATERAL (SELECT array_agg(u.val ORDER BY u.k) AS v FROM unnest(s.lin) WITH ORDINALITY AS u(val, k)
             GROUP BY (u.k - 1) / 5) AS l
    WHERE l.v[1] ~ '^[0-9]{{1,9}}$' AND l.v[1]::BIGINT BETWEEN 1 AND cardinality(s.events)
      AND l.v[2] ~ '^[0-9]{{1,9}}$';
  DELETE FROM audit_staged WHERE id = ANY(ids);
  RETURN mine;
END $$;
"""
_AWAIT_SQL = f"""
CREATE OR REPLACE FUNCTION aios_audit_await(p_sid BIGINT, p_now TIMESTAMPTZ, p_when BYTEA, p_batch INT)
RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE got TEXT; deadline TIMESTAMPTZ := clock_timestamp() + interval '60 seconds';
BEGIN
  PERFORM aios_audit_check_when(p_now, p_when);
  PERFORM set_config('lock_timeout', '60s', true);
  LOOP
    DELETE FROM audit_receipts WHERE id = p_sid RETURNING receipt INTO got;
    IF got IS NOT NULL THEN
      PERFORM set_config('synchronous_commit', 'off', true);  -- this transaction only deleted a receipt
      RETURN got;
    END IF;
    got := aios_audit_integrate(p_now, p_when, p_batch, p_sid);
    IF got = 'RAW' THEN RETURN 'RAW:' || p_sid; END IF;  -- the client integrates in Python (integrate_rows)
    IF got <> '' THEN RETURN got; END IF;
    IF got IS NULL THEN  -- an integrator is at work: wait for its commit (on the barrier if it holds it)
      IF pg_try_advisory_lock_shared({BARRIER}) THEN
        PERFORM pg_advisory_unlock_shared({BARRIER});
        PERFORM pg_sleep(0.0005);
      ELSE
        PERFORM pg_advisory_lock_shared({BARRIER});
        PERFORM pg_advisory_unlock_shared({BARRIER});
      END IF;
    END IF;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'staged audit row % was not sequenced within 60 s (is an integrator stuck?)', p_sid;
    END IF;
  END LOOP;
END $$;
CREATE OR REPLACE PROCEDURE aios_audit_append(p_events BYTEA[], p_cols TEXT[], p_lin TEXT[], p_now TIMESTAMPTZ,
  p_when BYTEA, p_batch INT, INOUT receipt TEXT DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE sid BIGINT; free BOOLEAN;
BEGIN
  PERFORM aios_audit_check_when(p_now, p_when);  -- refused before anything is staged
  free := pg_try_advisory_xact_lock({LOCK});
  INSERT INTO audit_staged (events, cols, lin) VALUES (p_events, p_cols, p_lin) RETURNING id INTO sid;
  IF free THEN  -- nobody integrating: sequence what is staged and these events in one transaction (one commit)
    LOOP
      receipt := aios_audit_integrate(p_now, p_when, p_batch, sid);
      EXIT WHEN receipt <> '';  -- more than p_batch rows were staged before these: the next batch has them
    END LOOP;
    IF receipt = 'RAW' THEN  -- a row staged by stage() comes first: commit ours, the client integrates in Python
      COMMIT;
      receipt := 'RAW:' || sid;
    END IF;
    RETURN;
  END IF;
  COMMIT;
  receipt := aios_audit_await(sid, p_now, p_when, p_batch);
END $$;
"""
_PYTHON_SQL = f"""
CREATE TABLE IF NOT EXISTS audit_integrated (id INTEGER PRIMARY KEY CHECK (id = 1), at TIMESTAMPTZ NOT NULL);
ALTER TABLE audit_integrated ADD COLUMN IF NOT EXISTS full_batch BOOLEAN NOT NULL DEFAULT false;
CREATE OR REPLACE FUNCTION aios_audit_take(p_batch INT, p_gap FLOAT8, p_max_events INT)
RETURNS TABLE (id BIGINT, events BYTEA[], wants BOOLEAN, head BIGINT, head_hash TEXT) LANGUAGE plpgsql AS $$
DECLARE h BIGINT; hh TEXT; ha TIMESTAMPTZ; n BIGINT;
BEGIN
  p_batch := GREATEST(COALESCE(p_batch, 1), 1);
  IF NOT pg_try_advisory_xact_lock({LOCK}) THEN RETURN; END IF;  -- no row: another integrator holds the lock
  -- a client that stops between its round trips (a stopped pod) must not hold the lock for ever: its session ends
  PERFORM set_config('idle_in_transaction_session_timeout', '30s', true);
  -- a batch integrated less than p_gap seconds ago (server time) leaves these for the next one, unless it left
  -- staged rows behind it: then a backlog waits, and integration must not be held to one batch an interval
  IF p_gap > 0 AND EXISTS (SELECT 1 FROM audit_integrated i
                           WHERE i.at > clock_timestamp() - make_interval(secs => p_gap) AND NOT i.full_batch) THEN
    RETURN;
  END IF;
  PERFORM pg_try_advisory_xact_lock({BARRIER});
  SELECT l.seq, l.chain_hash, l.recorded_at INTO h, hh, ha FROM audit_log l ORDER BY l.seq DESC LIMIT 1;
  h := COALESCE(h, 0); hh := COALESCE(hh, '{GENESIS}');
  -- the head first (row id 0; its events: the head's recorded_at as the pack writes it, none for an empty log: the
  -- batch is sealed no earlier), then the batch
  ha := aios_audit_honest_time(ha);  -- (none where no honest clock gives it)
  RETURN QUERY SELECT 0::BIGINT, CASE WHEN ha IS NULL THEN NULL ELSE ARRAY[aios_audit_when(ha)] END, FALSE, h, hh;
  -- at most p_batch rows and, past the first row, p_max_events events (a row's events counted before it)
  RETURN QUERY SELECT b.id, b.events, b.wants_receipt, NULL::BIGINT, NULL::TEXT FROM (
      SELECT s.*, sum(cardinality(s.events)) OVER (ORDER BY s.id) - cardinality(s.events) AS before
      FROM (SELECT t.id, t.events, t.wants_receipt FROM audit_staged t ORDER BY t.id LIMIT p_batch) s) b
    WHERE b.before = 0 OR b.before + cardinality(b.events) <= p_max_events ORDER BY b.id;
  GET DIAGNOSTICS n = ROW_COUNT;
  INSERT INTO audit_integrated (id, at, full_batch)
    VALUES (1, clock_timestamp(), EXISTS (SELECT 1 FROM (SELECT t.id FROM audit_staged t ORDER BY t.id OFFSET n) x))
    ON CONFLICT ON CONSTRAINT audit_integrated_pkey DO UPDATE SET at = EXCLUDED.at, full_batch = EXCLUDED.full_batch;
END $$;
DROP FUNCTION IF EXISTS aios_audit_done(BIGINT[], TEXT[], BIGINT[]);
CREATE OR REPLACE FUNCTION aios_audit_done(p_ids BIGINT[], p_bases BIGINT[], p_when BYTEA, p_own BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE bad BIGINT; at TIMESTAMPTZ; before_at TIMESTAMPTZ;
BEGIN
  at := aios_audit_check_when(NULL, p_when);  -- the time the caller sealed these entries with (and receipts name)
  -- times never decrease along seq (time-window reads rely on it): the batch is sealed no earlier than the record
  -- before it, which the honest integrator reads with the head (aios_audit_take) and seals at the later of the two
  -- (a time no honest clock gives, a hand-inserted record's, is not followed: aios_audit_honest_time)
  SELECT aios_audit_honest_time(l.recorded_at) INTO before_at FROM audit_log l
    WHERE l.seq = (SELECT min(b) FROM unnest(p_bases) AS b);
  IF before_at > at THEN
    RAISE EXCEPTION 'aios audit: refused batch time %: earlier than the record before the batch (%)',
      convert_from(p_when, 'UTF8'), before_at USING ERRCODE = '22007';
  END IF;
  -- (run with the owner's rights: writers may neither delete staged rows nor insert receipts themselves)
  -- a staged row is consumed only once each of its events is in the log, sealed as the integrators seal it, at the
  -- sequence number given: an acknowledged event cannot be made to vanish by deleting its row
  SELECT b.id INTO bad FROM unnest(p_ids, p_bases) AS b(id, base) JOIN audit_staged s ON s.id = b.id
    CROSS JOIN LATERAL unnest(s.events) WITH ORDINALITY AS e(ev, k)
    LEFT JOIN audit_log l ON l.seq = b.base + e.k
    WHERE l.entry IS DISTINCT FROM ('\\x7b226576656e74223a'::bytea || COALESCE(e.ev, '\\x6e756c6c'::bytea)
                                    || '\\x2c227265636f726465645f6174223a'::bytea
                                    || p_when || convert_to(',"seq":' || (b.base + e.k) || '}}', 'UTF8'))
       OR l.recorded_at IS DISTINCT FROM at  -- the column as the entry: the time the order above was checked on
    LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'staged audit row % is not in the log as sealed: it stays staged', bad USING ERRCODE = '42501';
  END IF;
  -- the receipts of the writers that wait, derived from the log here (one planted under such an id is replaced):
  -- a receipt names the first sequence number, the chain hash before it and the batch's time, as the log holds them
  DELETE FROM audit_receipts WHERE id = ANY(p_ids);
  INSERT INTO audit_receipts
    SELECT b.id, convert_from(p_when, 'UTF8') || '|' || b.id || ':' || (b.base + 1) || ':'
                 || COALESCE(p.chain_hash, '{GENESIS}')
    FROM unnest(p_ids, p_bases) AS b(id, base) JOIN audit_staged s ON s.id = b.id
    LEFT JOIN audit_log p ON p.seq = b.base
    WHERE s.wants_receipt AND b.id IS DISTINCT FROM p_own;
  DELETE FROM audit_staged WHERE id = ANY(p_ids);
END $$;
-- the two routines that consume staged rows and write receipts run with the owner's rights, on this schema only
-- (pg_temp last: a writer's temporary table cannot stand in for a log table), and only for roles granted them
DO $$ BEGIN
  EXECUTE format('ALTER FUNCTION aios_audit_done(BIGINT[], BIGINT[], BYTEA, BIGINT) SECURITY DEFINER'
                 ' SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION aios_audit_integrate(TIMESTAMPTZ, BYTEA, INT, BIGINT) SECURITY DEFINER'
                 ' SET search_path = %I, pg_temp', current_schema());
  REVOKE EXECUTE ON FUNCTION aios_audit_done(BIGINT[], BIGINT[], BYTEA, BIGINT) FROM PUBLIC;
  REVOKE EXECUTE ON FUNCTION aios_audit_integrate(TIMESTAMPTZ, BYTEA, INT, BIGINT) FROM PUBLIC;
END $$;
"""
_STAGED_OK_SQL = """
CREATE OR REPLACE FUNCTION aios_staged_ok(p_events BYTEA[], p_cols TEXT[]) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE j JSONB; ex JSONB; i INT;
BEGIN
  -- a row staged with its columns (aios_audit_append's) is sealed by the server-side integrator with those columns:
  -- each event must be ONE JSON object (not JSON: the cast fails the insert) whose kind, subject, execution and task
  -- are those columns, as every parser reads them; bytes-only rows are derived by the Python integrator itself
  IF cardinality(p_cols) = 0 THEN RETURN TRUE; END IF;
  IF cardinality(p_cols) <> 4 * cardinality(p_events) THEN RETURN FALSE; END IF;
  FOR i IN 1 .. cardinality(p_events) LOOP
    j := convert_from(p_events[i], 'UTF8')::jsonb;
    IF jsonb_typeof(j) IS DISTINCT FROM 'object' THEN RETURN FALSE; END IF;
    ex := j->'execution';
    IF jsonb_typeof(ex) IS DISTINCT FROM 'object' THEN ex := NULL; END IF;
    IF (j->>'kind') IS DISTINCT FROM p_cols[4 * i - 3] OR COALESCE(j->>'subject', '') IS DISTINCT FROM p_cols[4 * i - 2]
       OR COALESCE((ex->>'project') || '/' || (ex->>'domain') || '/' || (ex->>'name'), '')
          IS DISTINCT FROM p_cols[4 * i - 1]
       OR COALESCE(ex->>'task_name', '') IS DISTINCT FROM p_cols[4 * i] THEN
      RETURN FALSE;
    END IF;
  END LOOP;
  RETURN TRUE;
END $$;
ALTER TABLE audit_staged DROP CONSTRAINT IF EXISTS audit_staged_events_are_their_columns;
ALTER TABLE audit_staged ADD CONSTRAINT audit_staged_events_are_their_columns
  CHECK (cardinality(cols) = 0 OR aios_staged_ok(events, cols)) NOT VALID;  -- bytes-only rows: no function call
"""
"""Staged rows with columns hold events that are those columns (review finding R4: bytes ``A,"event":B`` staged with
A's columns were sealed with them, and the verifier's fast column check, which reads the first ``"event"``, passed a
record every parser reads as B). ``NOT VALID``: rows staged before the upgrade are integrated as they are."""
_BOUNDED_SQL = f"""
ALTER TABLE audit_staged DROP CONSTRAINT IF EXISTS audit_staged_events_bounded;
ALTER TABLE audit_staged ADD CONSTRAINT audit_staged_events_bounded CHECK (CASE
  WHEN array_ndims(events) IS NULL THEN true
  WHEN array_ndims(events) <> 1 OR array_lower(events, 1) <> 1 THEN false
  ELSE cardinality(events) <= {MAX_STAGED_EVENTS} AND array_position(events, NULL) IS NULL END) NOT VALID;
"""
"""A staged row holds one plain list of at most :data:`MAX_STAGED_EVENTS` events, none of them NULL (review R2/F4: a
writer's ``ARRAY[NULL]`` stopped the Python integrator for ever). ``NOT VALID``: rows staged before the upgrade are
integrated as they are (a NULL element is sealed as the JSON ``null``, which verification reports)."""
STAGING = (
    "CREATE TABLE IF NOT EXISTS audit_staged (id BIGSERIAL PRIMARY KEY, events BYTEA[] NOT NULL, cols TEXT[] NOT NULL);"
    "ALTER TABLE audit_staged ADD COLUMN IF NOT EXISTS wants_receipt BOOLEAN NOT NULL DEFAULT TRUE;"
    "ALTER TABLE audit_staged ADD COLUMN IF NOT EXISTS lin TEXT[] NOT NULL DEFAULT '{}';"
    "CREATE TABLE IF NOT EXISTS audit_receipts (id BIGINT PRIMARY KEY, receipt TEXT NOT NULL);"
    + _STAGED_OK_SQL
    + _BOUNDED_SQL
    + _WHEN_SQL
    + _INTEGRATE_SQL
    + _AWAIT_SQL
    + _PYTHON_SQL
)
"""Tables and functions of batched sequencing (created in place on existing logs: nothing to migrate)."""
PAUSE_ENV = "AIOS_TEST_PG_INTEGRATE_PAUSE"
"""Test hook: a file path; a writer creates it after its integrate (the server's, or a staging writer's in
:func:`integrate_rows`), then sleeps before COMMIT (tests kill it)."""
BATCH = 4096  # staged rows (append calls) per integrate transaction
SCALAR_EVENTS = 64
"""Up to this many events a call passes each event's bytes and columns as scalar parameters inside ``ARRAY[...]``
(psycopg adapts a Python list per call, about 30 us of client CPU for one event: as much again as the insert's
own); above it, as two array parameters (one placeholder per value would grow the statement without bound)."""


@functools.lru_cache(maxsize=2 * SCALAR_EVENTS + 2)
def _arrays_sql(n: int, lin_text: bool) -> str:
    """``events, cols, lin`` of a staged row of ``n`` events as SQL: array parameters, or scalars when few; the
    lineage values as one text split on the server, or (``lin_text`` false) as an array parameter."""
    lin = "string_to_array(%s, chr(31))" if lin_text else "%s::text[]"
    if n > SCALAR_EVENTS:
        return f"%b::bytea[], %s::text[], {lin}"
    return f"ARRAY[{','.join(['%b::bytea'] * n)}], ARRAY[{','.join(['%s'] * (4 * n))}]::text[], {lin}"


def _arrays_params(blobs: list[bytes], cols: list[str], lin: str | list[str]) -> tuple[Any, ...]:
    """The parameters :func:`_arrays_sql` of ``len(blobs)`` takes."""
    return (blobs, cols, lin) if len(blobs) > SCALAR_EVENTS else (*blobs, *cols, lin)


def _staged_row(events: Sequence[AuditEvent]) -> tuple[list[bytes], list[str], str | list[str]]:
    """The events' canonical bytes, their plain columns (four per event) and their lineage projection rows
    (:func:`.lineage_rows.staged_text`: the integrator inserts them with the records), as ``audit_staged`` holds
    them."""
    cols: list[str] = []
    for ev in events:
        ex = ev.execution
        cols += [ev.kind, ev.subject, ex.execution_key if ex else "", ex.task_name if ex else ""]
    blobs = [_to_json(ev) for ev in events]
    return blobs, cols, staged_text(blobs)


STAGE_INTEGRATE_EVERY_S = 0.2
"""How often one connection that stages also tries to integrate (its first staging call always tries)."""


@functools.lru_cache(maxsize=SCALAR_EVENTS + 2)
def _raw_sql(n: int) -> str:
    """The insert of a staged row of ``n`` events' bytes alone (``cols`` and ``lin`` empty: the integrator derives
    them), returning its id. The bytes go as binary parameters (``%b``): as text, psycopg would hex-escape them to
    twice their size and the server parse that back."""
    events = "%b::bytea[]" if n > SCALAR_EVENTS else f"ARRAY[{','.join(['%b::bytea'] * n)}]"
    return f"INSERT INTO audit_staged (events, cols, wants_receipt) VALUES ({events}, '{{}}', false) RETURNING id"


class StagedNotSequenced(Exception):
    """The staged row ``staged_id`` was committed, but its sequencing failed (``cause``): it stays staged, and the
    next integrator sequences it."""

    def __init__(self, staged_id: int, cause: BaseException) -> None:
        super().__init__(f"staged audit row {staged_id} was not sequenced: {type(cause).__name__}")
        self.staged_id = staged_id
        self.cause = cause


class ReceiptNotInLog(Exception):
    """A receipt named sequence numbers at which the log does not hold the records this writer staged: it was not
    the integrator's (a store writer can delete a staged row and write a receipt for it), so the events' fate is
    unknown."""


def check_receipt(conn: Any, records: Sequence[AuditRecord]) -> None:
    """Raise :class:`ReceiptNotInLog` unless the log holds exactly ``records`` (sealed here from a receipt) at their
    sequence numbers: a receipt is a row in the database, so it is checked against the log it speaks for (one
    look-up by primary key). A record removed from the log later breaks its chain, which verification finds."""
    first, last = records[0].seq, records[-1].seq
    got = conn.execute(
        "SELECT seq, leaf_hash, prev_hash, chain_hash FROM audit_log WHERE seq BETWEEN %s AND %s ORDER BY seq",
        (first, last),
    ).fetchall()
    if [tuple(row) for row in got] != [(r.seq, r.leaf_hash, r.prev_hash, r.chain_hash) for r in records]:
        raise ReceiptNotInLog(
            f"the receipt for this append names records {first}..{last}, which the log does not hold as sealed here"
        )


def stage(conn: Any, events: Sequence[AuditEvent], *, integrate: bool) -> int:
    """Stage ``events`` durably and return the staged row's id: the acknowledgement, before sequencing.

    One plain insert of the events' canonical bytes, committed (the connection is in autocommit;
    ``synchronous_commit`` on): what an un-chained audit table's insert costs. The writer derives nothing: the
    integrator (:func:`integrate_rows`) derives the columns and projection rows of a whole batch in one process. With
    ``integrate`` (the store asks every :data:`STAGE_INTEGRATE_EVERY_S` per connection) the writer then integrates
    every staged row if no one holds the log's lock: a second round trip, a batch of everything staged since the
    last integration. A row is therefore sequenced by the next such try of any writer, by any append, or by
    :func:`drain` (``aios audit integrate``, run on a schedule beside bulk writers), whichever comes first.
    """
    blobs = [_to_json(ev) for ev in events]
    if any(b"\\u0000" in blob for blob in blobs):
        raise ValueError("an event holds a NUL character (\\u0000), which PostgreSQL text cannot store: remove it")
    if len(blobs) <= MAX_STAGED_EVENTS:
        staged = _stage_raw(conn, blobs)
    else:  # rows of MAX_STAGED_EVENTS, committed together: the last id is integrated only after all the others
        with conn.transaction():
            for i in range(0, len(blobs), MAX_STAGED_EVENTS):
                staged = _stage_raw(conn, blobs[i : i + MAX_STAGED_EVENTS])
    if integrate:
        try:
            with conn.transaction():
                integrate_rows(conn, gap=STAGE_INTEGRATE_EVERY_S)
        except Exception as e:  # the staged row is committed: the acknowledgement stands, only this try failed
            raise StagedNotSequenced(staged, e) from e
    return staged


def _stage_raw(conn: Any, blobs: list[bytes]) -> int:
    """Insert one bytes-only staged row (at most :data:`MAX_STAGED_EVENTS` events); its id."""
    return int(conn.execute(_raw_sql(len(blobs)), blobs if len(blobs) <= SCALAR_EVENTS else (blobs,)).fetchone()[0])


def drain(conn: Any, timeout: float = 60.0) -> int:
    """Integrate until nothing is staged (waiting while another integrator works); returns the rows integrated.

    What ``aios audit integrate`` and a service's integrator loop call so that every acknowledged row is sequenced
    within a bounded delay even when no writer comes after it.
    """
    deadline, done = time.monotonic() + timeout, 0
    left = _staged_count(conn)
    while left:
        with conn.transaction():
            got = integrate_rows(conn)
        after = _staged_count(conn)
        if got is None:  # another integrator holds the lock
            if time.monotonic() > deadline:
                msg = f"{after} staged audit row(s) were not integrated within {timeout:g} s (is an integrator stuck?)"
                raise TimeoutError(msg)
            time.sleep(0.002)
        else:
            done += left - after
        left = after
    return done


def _staged_count(conn: Any) -> int:
    return int(conn.execute("SELECT count(*) FROM audit_staged").fetchone()[0])


def append(conn: Any, events: Sequence[AuditEvent]) -> tuple[dt.datetime, int, str]:
    """Stage ``events``, integrate or wait: ``(recorded_at, first seq, prev chain hash)`` of the first event.

    Raises:
        StagedNotSequenced: the events were staged (committed) but not sequenced: never append them again.
    """
    blobs, cols, lin = _staged_row(events)
    now = dt.datetime.now(dt.UTC)
    if os.environ.get(PAUSE_ENV):
        return _append_pausing(conn, blobs, cols, lin, now)
    sql = f"CALL aios_audit_append({_arrays_sql(len(blobs), isinstance(lin, str))}, %s, %s, %s, NULL)"
    receipt = conn.execute(sql, (*_arrays_params(blobs, cols, lin), now, _json_time(now), BATCH)).fetchone()[0]
    if receipt.startswith("RAW:"):  # rows staged by stage() come before this call's: integrated in Python
        sid = int(receipt[4:])
        try:
            receipt = _await_in_python(conn, sid)
        except Exception as e:  # the procedure committed the staged row: it is in, only not yet sequenced
            raise StagedNotSequenced(sid, e) from e
    return _parse(receipt)


def _await_in_python(conn: Any, sid: int, timeout: float = 60.0) -> str:
    """The receipt of staged row ``sid`` once integrated: by another integrator, or by this connection, which waits
    for the log's lock (at most ``timeout``) and integrates batches in :func:`integrate_rows` until ``sid`` is done."""
    deadline = time.monotonic() + timeout
    while True:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{int(timeout * 1000)}ms'")
            conn.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
            got = conn.execute("DELETE FROM audit_receipts WHERE id = %s RETURNING receipt", (sid,)).fetchone()
            mine = got[0] if got else integrate_rows(conn, sid)  # this transaction holds the lock: never None
        if mine:
            return str(mine)
        if time.monotonic() > deadline:
            raise TimeoutError(f"staged audit row {sid} was not sequenced within {timeout:g} s")


def _parse(receipt: str) -> tuple[dt.datetime, int, str]:
    """``"<recorded_at as JSON>"|id:first seq:prev chain hash`` -> its parts."""
    when, _, rest = receipt.partition("|")
    _sid, first, prev = rest.split(":")
    return dt.datetime.fromisoformat(json.loads(when)), int(first), prev


def _append_pausing(
    conn: Any, blobs: list[bytes], cols: list[str], lin: str | list[str], now: dt.datetime
) -> tuple[dt.datetime, int, str]:
    """The same steps as the procedure, with the integrate's transaction held open at the test's pause."""
    arrays = _arrays_sql(SCALAR_EVENTS + 1, isinstance(lin, str))  # all three as array (or text) parameters
    q = f"INSERT INTO audit_staged (events, cols, lin) VALUES ({arrays})"
    sid = conn.execute(q + " RETURNING id", (blobs, cols, lin))
    args = (sid.fetchone()[0], now, _json_time(now), BATCH)
    with conn.transaction():
        receipt = conn.execute("SELECT aios_audit_await(%s, %s, %s, %s)", args).fetchone()[0]
        Path(os.environ[PAUSE_ENV]).touch()
        time.sleep(30)
    return _parse(receipt)


def integrate_rows(conn: Any, own: int | None = None, gap: float = 0.0) -> str | None:
    """Sequence up to :data:`BATCH` staged rows (and, past the first row, :data:`MAX_BATCH_EVENTS` events), oldest
    first, in the caller's transaction, if the log's lock is free there (always, when the transaction already holds
    it; None when another transaction holds it or, with ``gap``, when a batch that left nothing staged behind it was
    integrated less than ``gap`` seconds ago by the server's clock: staging writers then leave their rows to the next
    batch, so that many writers' tries make a few large batches instead of many small ones, while a backlog of more
    than a batch is integrated batch after batch, not one an interval).

    What ``aios_audit_integrate`` does on the server, done in this process for a whole batch in four round trips
    (``aios_audit_take``, a binary ``COPY`` into ``audit_log`` and one into ``audit_proj_lineage``,
    ``aios_audit_done``): each event's entry is sealed exactly as :func:`.records.seal_many`
    seals it (same bytes, same hashes), its columns and projection rows derived from its own bytes (as
    :func:`.projections.rows_for` derives them; columns a writer staged are not trusted), receipts left for
    writers that wait, and the staged rows consumed, all in this transaction (sequenced exactly once). Returns
    ``own``'s receipt if it was in the batch, else ``""``.
    """
    # binary results: the staged bytes come back as they are, where text results hex-escaped every byte on the server
    # and parsed it back here (a take of 1,400 staged rows under sixteen writers: 32 ms, binary 11 ms)
    take = "SELECT * FROM aios_audit_take(%s, %s, %s)"
    got = conn.execute(take, (BATCH, gap, MAX_BATCH_EVENTS), binary=True).fetchall()
    if not got:
        return None
    seq, prev, head_when = int(got[0][3]), str(got[0][4]), got[0][1]
    if len(got) == 1:
        return ""
    now = dt.datetime.now(dt.UTC)
    if head_when:  # times never decrease along seq: a clock behind the head's record seals the head's time
        # (aios_audit_take gives none where it is no time an honest clock gives: a hand-inserted head far ahead)
        now = max(now, dt.datetime.fromisoformat(json.loads(bytes(head_when[0]))))
    when = _json_time(now)
    when_text = when.decode()
    prev_b, sha = bytes.fromhex(prev), hashlib.sha256
    log: list[tuple[Any, ...]] = []
    lin: list[tuple[Any, ...]] = []
    ids: list[int] = []
    bases: list[int] = []
    mine = ""
    for sid, events, _wants, _, _ in got[1:]:
        if sid == own:
            mine = f"{when_text}|{sid}:{seq + 1}:{prev}"
        ids.append(sid)
        bases.append(seq)
        for item in events:
            # a NULL element (staged before the table's CHECK refused it) is sealed as the JSON null, as the server's
            # integrator seals it: bytes staged by hand cannot stop this integrator, and verification reports it
            blob = b"null" if item is None else item
            seq += 1
            entry = _ENTRY % (blob, when, seq)
            leaf = sha(b"\x00" + entry).digest()
            prev_b = sha(prev_b + leaf).digest()
            chain = prev_b.hex()
            event = parse_event(blob)
            log.append((seq, now, *_columns(event), entry, leaf.hex(), prev, chain))
            prev = chain
            # governance kinds are never staged by this pack's writers (stage_many appends them under the lock): a
            # row staged by hand gets no governance rows here, and verification reports the difference
            lin += [(seq, pos, _text(child), _text(parent), _text(rel)) for pos, child, parent, rel in dict_rows(event)]
    with conn.cursor() as cur:  # binary COPY: rows formatted in psycopg's C code, bytes sent as they are
        with cur.copy("COPY audit_log FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_LOG_TYPES)
            for row in log:
                copy.write_row(row)
        # a row already at (seq, pos) fails this batch, loud, never skipped (that hid the record's row from every
        # indexed reader): the table's trigger refuses a row at a seq the log does not hold yet, so such a row was
        # planted before the trigger existed, and `aios audit verify` names it
        with cur.copy("COPY audit_proj_lineage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_LINEAGE_TYPES)
            for row in lin:
                copy.write_row(row)
        # the server checks that each staged row's events are in the log as sealed before it consumes the row, and
        # writes the waiting writers' receipts from the log itself
        cur.execute("SELECT aios_audit_done(%b, %b, %b, %s)", (ids, bases, when, own))
    if os.environ.get(PAUSE_ENV) and own is None:  # test hook: a staging integrator, killed before its COMMIT
        Path(os.environ[PAUSE_ENV]).touch()
        time.sleep(30)
    return mine


_LOG_TYPES = ("int8", "timestamptz", "text", "text", "text", "text", "bytea", "text", "text", "text")
_LINEAGE_TYPES = ("int8", "int4", "text", "text", "text")


def _text(value: str) -> str:
    """A value PostgreSQL ``text`` can hold: NUL is replaced (a staged row nobody's writer made cannot stop the
    integrator; verification reports the record whose columns or rows then differ from its entry's)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _columns(event: dict[str, Any] | None) -> tuple[str, str, str, str]:
    """``kind, subject, execution, task`` of an event as ``stores.seal_rows`` fills them (empty for bytes that are no
    event: the entry is sealed all the same, and verification reports it)."""
    if event is None:
        return "", "", "", ""
    kind, subject = _text(str(event.get("kind", ""))), _text(str(event.get("subject", "")))
    ex = event.get("execution")
    if not isinstance(ex, dict) or not ex:
        return kind, subject, "", ""
    return kind, subject, _text(execution_key_of(ex)), _text(str(ex.get("task_name", "")))
