"""The HTML, CSS and script of the review report (no external resources: it works offline, from a file)."""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from pathlib import Path

from flytekitplugins.aios_audit.verify import VerifyResult


@functools.cache
def _assets() -> tuple[str, str]:
    """(``<style>``, ``<script>``) of the page, from report_assets.html beside this module."""
    text = (Path(__file__).parent / "report_assets.html").read_text(encoding="utf-8")
    style, script = text.split("<!--SPLIT-->")
    return style.split("-->", 1)[1].strip(), script.strip()


_ERRORS = (
    "window.addEventListener('error',function(e){var x=document.getElementById('js-errors');"
    "x.textContent+=(e.message||'error')+'\\n';x.hidden=false});"
)


def _graphs(svgs: Sequence[str], titles: Sequence[tuple[str, str]]) -> str:
    if not svgs:
        return '<p class="note">no lineage to draw</p>'
    return "".join(
        f'<figure class="graph" data-doc="{html.escape(doc)}"><figcaption>{html.escape(title)}</figcaption>'
        f"{svg}</figure>"
        for (title, doc), svg in zip(titles, svgs, strict=True)
    )


def page(data_json: str, svgs: Sequence[str], result: VerifyResult, titles: Sequence[tuple[str, str]] = ()) -> str:
    """The whole page; ``data_json`` is embedded as is (``</`` escaped), ``svgs`` are inline Graphviz drawings."""
    status = "ok" if result.ok else "bad"
    bad = (
        f' <a href="#bad" onclick="var r=document.getElementById(\'seq-{result.first_bad_seq}\');'
        'if(r)r.scrollIntoView()">'
        f"go to record #{result.first_bad_seq}</a> (highlighted in the records table)"
        if result.first_bad_seq
        else ""
    )
    data = data_json.replace("<", "\\u003c")  # no "</script>" or "<!--" can end or bend the data block
    rec_head = "".join(
        f"<th>{c}</th>"
        for c in ("seq", "kind", "status", "actor", "task", "execution", "document", "what", "record id")
    )
    doc_head = "".join(
        f"<th>{c}</th>"
        for c in (
            "document",
            "outcome",
            "model, version, digest",
            "policy decisions",
            "approvers (roles, reasons, signatures)",
            "action and system of record",
        )
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Audit review report</title>'
        f"{_assets()[0]}<script>{_ERRORS}</script></head><body><h1>Audit review report</h1>"
        f'<p id="verification" class="{status}">Verification: {html.escape(result.summary())}{bad}</p>'
        '<pre id="js-errors" class="bad" hidden></pre>'
        '<div class="bar"><input id="search" type="search" placeholder="search: document, request id, approver, '
        'policy, model, amount..."> <select id="kind"><option value="">every kind</option></select> '
        '<select id="exec"><option value="">every execution</option></select> <select id="outcome">'
        '<option value="">every outcome</option><option>posted</option><option>rejected</option><option>denied</option>'
        "<option>quarantined</option><option>waiting</option></select></div>"
        '<h2>Executions</h2><table id="executions"><tr><th>execution</th><th>records</th><th>kinds</th><th>first</th>'
        '<th>last</th></tr><tbody id="executions-body"></tbody></table>'
        f'<h2>Documents</h2><p id="documents-count"></p><table id="documents"><tr>{doc_head}</tr>'
        '<tbody id="documents-body"></tbody></table><button id="more-documents">show more</button>'
        f"<h2>Lineage graphs</h2>{_graphs(svgs, titles)}"
        f'<h2>Records</h2><p id="records-count"></p><table id="records"><tr>{rec_head}</tr>'
        '<tbody id="records-body"></tbody></table><button id="more-records">show more</button>'
        f'<script id="data" type="application/json">{data}</script>{_assets()[1]}</body></html>'
    )
