"""A small governed workflow: read a document, classify it, act on the result.

Every task is audited, so ``aios lineage trace`` can follow the action back to the document digest.
Run it: ``pyflyte run tests/audit/governed_wf.py wf --doc path/to/file.txt``.
"""

from __future__ import annotations

from flytekit import task, workflow
from flytekit.types.file import FlyteFile

from flytekitplugins.aios_audit import Audited, ModelRef, audited, current_audit

KEYWORDS = {"invoice": "finance", "refund": "finance", "password": "security", "outage": "operations"}


@task(enable_deck=True)
@audited(subject_input="doc")
def extract(doc: FlyteFile) -> str:
    """Read and normalize the document text.

    Args:
        doc: The source document (plain text).
    """
    with open(doc.download(), encoding="utf-8") as f:
        return " ".join(f.read().lower().split())


@task(task_config=Audited(attributes={"stage": "classify"}), enable_deck=True)
def classify(text: str) -> str:
    """Route the text to a team with a keyword model.

    Args:
        text: Normalized document text.
    """
    scope = current_audit()
    if scope is not None:
        scope.add_model(ModelRef(name="keyword-router", version="1", digest="sha256:" + "ab" * 32))
        scope.add_policy_decision({"effect": "allow", "policy_ids": ["route-any-document"]})
    hits = [team for word, team in KEYWORDS.items() if word in text]
    return hits[0] if hits else "general"


@task(enable_deck=True)
@audited(kind="action")
def act(team: str, text: str) -> str:
    """Open a ticket for the team (the action taken in a system of record).

    Args:
        team: Team chosen by the classifier.
        text: Normalized document text.
    """
    return f"ticket:{team}:{len(text)}"


@workflow
def wf(doc: FlyteFile) -> str:
    """Extract, classify and act on one document.

    Args:
        doc: The document to process.
    """
    text = extract(doc=doc)
    team = classify(text=text)
    return act(team=team, text=text)
