"""Run the KPI workflow in a process of its own (what ``pyflyte run`` does), then one failing task."""

from __future__ import annotations

import sys

from flytekit.types.file import FlyteFile

from tests.observability import kpi_wf

if __name__ == "__main__":
    print(kpi_wf.batch(doc=FlyteFile(sys.argv[1])))
    if len(sys.argv) > 2:
        try:
            kpi_wf.fail_once(n=1)
        except RuntimeError:
            pass
