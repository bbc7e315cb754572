"""Model catalog of the flyte-aios pack: every model the pack uses or produces, governed and audited.

Public API::

    from flytekitplugins.aios_catalog import ModelEntry, catalog

    cat = catalog()  # state = fold over kind="catalog" audit records, seeded from config/models.yaml
    cat.register(ModelEntry(name=..., version=..., digest=..., owner=...), actor="service:retraining")
    cat.get(name, version); cat.champion(name); cat.list(); cat.history(name)
    cat.promote(name, version, actor=..., evidence={...}, approval_request_id=None)

Writes go through policy (``write_catalog``, ``promote_model``) and, where the policy asks, an approved
request; each is one durable audit record or nothing happens. Read with ``aios models list/show/history``.
"""

from flytekitplugins.aios_catalog.catalog import Catalog, catalog
from flytekitplugins.aios_catalog.entries import DATA_CLASSES, STAGES, CatalogChange, ModelEntry, Stage
from flytekitplugins.aios_catalog.errors import ApprovalRequired, CatalogError, read_seed

__all__ = [
    "DATA_CLASSES",
    "STAGES",
    "ApprovalRequired",
    "Catalog",
    "CatalogChange",
    "CatalogError",
    "ModelEntry",
    "Stage",
    "catalog",
    "read_seed",
]
