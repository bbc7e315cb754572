"""Import this module to register every connector of the pack (what ``pyflyte serve connector`` loads).

``pyflyte serve connector --port 8000 --prometheus_port 9090 --modules flytekitplugins.aios_connectors.registry``

Registers the policy decision (sync), approval notification (async) and system-of-record connectors.
"""

from flytekitplugins.aios_connectors import approval_connector, policy_connector, system_of_record

CONNECTOR_MODULES = (policy_connector.__name__, approval_connector.__name__, system_of_record.__name__)

__all__ = ["CONNECTOR_MODULES"]
