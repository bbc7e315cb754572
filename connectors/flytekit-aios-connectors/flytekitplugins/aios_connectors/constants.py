"""Names shared by the connector tasks (what is serialized) and the connectors (what executes).

Deliberately free of imports: the task-type strings are the contract between a task template and the
connector that serves it, and the secret names are read by ``tasks/images.py``, the runbook and the
Helm values. Changing any value here is a breaking change for registered workflows and deployments.
"""

from typing import Final

# ruff: noqa: S105 - these are the NAMES of secrets (where they come from), never values

POLICY_DECISION_TASK_TYPE: Final = "aios_policy_decision"
APPROVAL_NOTIFICATION_TASK_TYPE: Final = "aios_approval_notification"

SECRET_GROUP: Final = "aios"
"""Kubernetes secret (Flyte secret group) holding every credential of the pack."""

AUDIT_STORE_SECRET_KEY: Final = "audit-store-url"
AUDIT_STORE_ENV: Final = "AIOS_AUDIT_STORE"
CHECKPOINT_KEY_SECRET_KEY: Final = "checkpoint-signing-key"
CHECKPOINT_KEY_ENV: Final = "AIOS_CHECKPOINT_KEY_PEM"
WEBHOOK_URL_SECRET_KEY: Final = "approval-webhook-url"
WEBHOOK_URL_ENV: Final = "AIOS_APPROVAL_WEBHOOK_URL"
WEBHOOK_SECRET_SECRET_KEY: Final = "approval-webhook-secret"
WEBHOOK_SECRET_ENV: Final = "AIOS_APPROVAL_WEBHOOK_SECRET"
WEBHOOK_ALLOW_HTTP_ENV: Final = "AIOS_APPROVAL_WEBHOOK_ALLOW_HTTP"

CONNECTOR_IDENTITIES_FILE: Final = "connector_identities.yaml"
"""In the config dir: which (namespace, service account) of a Flyte task execution acts as which principal."""

SIGNATURE_HEADER: Final = "X-AIOS-Signature"
TIMESTAMP_HEADER: Final = "X-AIOS-Timestamp"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
