"""Model approvers in another process: wait for a pending ``model-promotion`` request, then decide it.

Usage: ``python tests/training/approver.py <approve|reject> <principal> [<principal> ...]``. Each principal
tries in turn (an unauthorized one is refused and audited). Prints ``champion_before=<version|none>`` and
one ``<request id> <code> <accepted>`` line per attempt. Reads the workflow's audit store
(``AIOS_AUDIT_STORE``), exactly as ``aios approvals approve`` in a second terminal would.
"""

from __future__ import annotations

import sys
import time

from flytekitplugins.aios_approvals.evaluate import Env
from flytekitplugins.aios_core.settings import get_settings

DEADLINE_S = 600


def _pending() -> str:
    from flytekitplugins.aios_approvals import outcome
    from flytekitplugins.aios_approvals.state import projection
    from flytekitplugins.aios_audit import audit_log

    for rid, st in projection(audit_log(get_settings())).requests.items():
        if st.request.gate == "model-promotion" and outcome(rid, env=Env.load(get_settings())).status == "pending":
            return rid
    return ""


def main() -> int:
    from flytekitplugins.aios_approvals import decide
    from flytekitplugins.aios_catalog import catalog

    action, principals = sys.argv[1], sys.argv[2:]
    deadline = time.time() + DEADLINE_S
    rid = ""
    while not rid and time.time() < deadline:
        rid = _pending()
        time.sleep(0.2)
    if not rid:
        print("no pending model-promotion request", flush=True)
        return 2
    champ = catalog(get_settings()).champion("vader-sentiment")
    print(f"champion_before={champ.version if champ else 'none'}", flush=True)
    accepted = False
    for who in principals:
        res = decide(rid, who, action, reason="held-out figures reviewed", env=Env.load(get_settings()))  # type: ignore[arg-type]
        print(rid, res.code, res.accepted, flush=True)
        accepted = res.accepted
    return 0 if accepted else 1


if __name__ == "__main__":
    sys.exit(main())
