"""The audit trail as other plugins use it: ``audit_log(settings).append(AuditEvent(...))``.

One store per (process, URL). ``append`` is durable on return and raises ``AuditWriteError``
otherwise; governance code turns that into a deny (fail closed).
"""

from __future__ import annotations

import threading

from flytekitplugins.aios_audit.stores import AuditStore, AuditWriteError, open_store
from flytekitplugins.aios_core.settings import Settings

_lock = threading.Lock()
_stores: dict[str, AuditStore] = {}


def resolve_store_url(settings: Settings) -> str:
    """The audit store URL, with ``env:VAR`` indirection (cluster secrets) resolved; fails closed."""
    from flytekitplugins.aios_core.errors import ConfigError
    from flytekitplugins.aios_core.keys import resolve_env_ref

    fix = "mount the Flyte secret or set AIOS_AUDIT_STORE"
    try:
        return resolve_env_ref(settings.audit_store, what="audit store URL", fix=fix)
    except ConfigError as e:
        raise AuditWriteError(str(e)) from e


def audit_log(
    settings: Settings, url: str | None = None, *, emit: bool = True, ids_tail_read: int | None = None
) -> AuditStore:
    """The process-wide store for ``url`` (default: ``settings.audit_store``).

    Args:
        settings: The caller's resolved settings (built once by the command or task and passed down).
        url: Store URL overriding the settings.
        emit: Attach the OpenLineage / OpenTelemetry emitters the settings ask for.
        ids_tail_read: SQLite's look-ups by record id: how many records appended since the id table's last catch-up
            are read from the log's tail rather than indexed first (see :func:`open_store`); the default suits the
            governance calls, a one-shot reader passes more. Each figure is its own store object.
    """
    url = url or resolve_store_url(settings)
    key = f"{url}|{settings.lineage_url}|{settings.otel_exporter}" if emit else f"{url}|raw"
    if ids_tail_read is not None:
        key += f"|tail={int(ids_tail_read)}"
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = open_store(url, ids_tail_read=ids_tail_read)
            if emit:
                from flytekitplugins.aios_audit.emit import attach_emitters

                attach_emitters(store, settings)
            _stores[key] = store
        return store


def close_all() -> None:
    """Flush pending lineage events, then close every open store (tests; forked workers)."""
    from flytekitplugins.aios_audit.emit import flush

    flush()
    with _lock:
        for s in _stores.values():
            s.close()
        _stores.clear()
