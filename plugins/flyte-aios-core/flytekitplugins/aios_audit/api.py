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


def audit_log(settings: Settings, url: str | None = None, *, emit: bool = True) -> AuditStore:
    """The process-wide store for ``url`` (default: ``settings.audit_store``).

    Args:
        settings: The caller's resolved settings (built once by the command or task and passed down).
        url: Store URL overriding the settings.
        emit: Attach the OpenLineage / OpenTelemetry emitters the settings ask for.
    """
    url = url or resolve_store_url(settings)
    key = f"{url}|{settings.lineage_url}|{settings.otel_exporter}" if emit else f"{url}|raw"
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = open_store(url)
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
