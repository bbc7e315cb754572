"""Typed approval requests, decisions and outcomes.

An :class:`ApprovalRequest` is what a pipeline asks a person to sign off: what (a typed summary plus
content digests of the evidence), why (the policy decision that asked for it), who may decide (roles
from config/roles.yaml), how many (quorum per risk) and until when. Its id is a digest, so opening the
same request twice gives the same id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.types import Risk

Status = Literal["pending", "approved", "rejected", "timed_out", "refused"]
Action = Literal["approve", "reject"]
TERMINAL: frozenset[str] = frozenset({"approved", "rejected", "timed_out", "refused"})


def content_key_of(
    gate: str,
    risk: str,
    subject: str,
    summary: dict[str, Any],
    evidence: dict[str, str],
    requester: str,
    launcher: str | None,
) -> str:
    """The content key of a request of these fields: their digest (canonical JSON), the launcher's included since
    2026-12-05 (``launcher=None``: the formula before). ``open_request`` keys requests by it, the fold checks each
    record's by it (:meth:`ApprovalRequest.integrity_problem`), and the acting point rebuilds the decide step's."""
    content: dict[str, Any] = {"gate": gate, "risk": risk, "subject": subject, "summary": summary}
    content |= {"evidence": evidence, "requester": requester}
    return digest_value(content if launcher is None else content | {"launcher": launcher})


def request_id_of(content_key: str, round_: int) -> str:
    """The id of round ``round_`` of the requests with ``content_key``: ``apr-`` and 20 hex digits of their digest."""
    return "apr-" + digest_value({"content_key": content_key, "round": round_}).removeprefix("sha256:")[:20]


class ApprovalRequest(BaseModel):
    """One sign-off request, as recorded in the ``approval_request`` audit record."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(description="'apr-' + 20 hex chars of the digest of content_key and round")
    content_key: str = Field(description="digest of gate, risk, subject, summary, evidence, requester, launcher")
    round: int = Field(default=1, description="increments when the same content is asked again after a final use")
    gate: str
    risk: Risk
    subject: str = Field(description="what is approved, usually a content digest")
    summary: dict[str, Any] = Field(default_factory=dict, description="typed, non-secret facts shown to reviewers")
    evidence: dict[str, str] = Field(default_factory=dict, description="name -> digest or audit record id")
    requester: str
    launcher: str = Field(
        default="", description="who launched the run that opened the request (the person before act_as)"
    )
    reason: str = ""
    roles: list[str] = Field(default_factory=list, description="roles allowed to decide (from roles.yaml)")
    quorum: int = 1
    created_at: dt.datetime
    expires_at: dt.datetime
    execution: str = Field(default="", description="project/domain/name of the Flyte execution that opened it")
    signal_id: str = Field(default="", description="Flyte gate node that waits for it (= gate)")

    def digest(self) -> str:
        """Content digest of the request; every decision signature covers it."""
        return digest_value(self.model_dump(mode="json"))

    @classmethod
    def opened(cls, round_: int = 1, **fields: Any) -> ApprovalRequest:
        """A request of ``fields`` (everything but its id and content key) with the content key and id
        :func:`~.service.open_request` gives them: for tools that write requests of their own (trail builders)."""
        draft = cls(request_id="", content_key="", round=round_, **fields)
        key = draft.derived_key()
        return draft.model_copy(update={"content_key": key, "request_id": request_id_of(key, round_)})

    def derived_key(self, launcher: bool = True) -> str:
        """The content key of this request's own fields (:func:`content_key_of`; ``launcher=False``: the formula
        before the launcher was part of the content, 2026-12-05)."""
        fields = (self.gate, self.risk, self.subject, self.summary, self.evidence, self.requester)
        return content_key_of(*fields, self.launcher if launcher else None)

    def integrity_problem(self) -> str:
        """Why this request, as a record states it, is not one :func:`~.service.open_request` opens ("" when it is):
        its id derives from its content key and round, its content key from its own fields (the launcher included
        since 2026-12-05; a request of no recorded launcher, which no run may use, under the earlier formula), and
        it stays open for (0, ``MAX_APPROVAL_TIMEOUT_S``]. A store writer once planted the request a policy gate
        was about to ask for, with its id and content key but ``risk: low`` and quorum 1, and one approver paid
        what the policy had sent to two (review of 2026-12-07)."""
        from flytekitplugins.aios_core.settings import MAX_APPROVAL_TIMEOUT_S

        keys = {self.derived_key()} | ({self.derived_key(launcher=False)} if not self.launcher else set())
        if self.content_key not in keys:
            return f"its content key {self.content_key[:19]}... is not the digest of its own fields"
        own = request_id_of(self.content_key, self.round)
        if self.request_id != own or self.round < 1:
            return f"its id is not the one its content key and round {self.round} give ({own})"
        span = (self.expires_at - self.created_at).total_seconds()
        if not 0 < span <= MAX_APPROVAL_TIMEOUT_S:
            return f"it stays open {span:,.0f} s, outside (0, {MAX_APPROVAL_TIMEOUT_S:,}] s"
        return ""


class ApprovalDecision(BaseModel):
    """An accepted, signed decision by one authorized principal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str
    request_digest: str
    approver: str
    roles: list[str] = Field(default_factory=list)
    action: Action
    reason: str = ""
    decided_at: dt.datetime
    decision_key: str = Field(description="digest of (request id, approver): one decision per approver")
    key_id: str = Field(default="", description="digest of the Ed25519 public key that signed it")
    signature: str = Field(default="", description="base64 Ed25519 signature over signed_payload()")

    def signed_payload(self) -> dict[str, Any]:
        """The fields the signature covers (everything but the signature itself)."""
        return self.model_dump(mode="json", exclude={"signature"})


class ApprovalOutcome(BaseModel):
    """Verified status of one request, as the step after a gate or :func:`outcome` sees it."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    gate: str = ""
    status: Status
    subject: str = ""
    risk: str = Field(default="", description="risk the request was opened at (the policy's, when it asked)")
    evidence: dict[str, str] = Field(default_factory=dict, description="the request's evidence (record ids)")
    summary: dict[str, Any] = Field(default_factory=dict, description="the request's facts, as its approvers saw them")
    requester: str = Field(default="", description="who opened the request")
    execution: str = Field(default="", description="project/domain/name of the Flyte execution that opened it")
    approvers: list[str] = Field(default_factory=list)
    rejected_by: list[str] = Field(default_factory=list)
    quorum: int = 1
    reason: str = ""
    signatures: list[str] = Field(default_factory=list, description="base64 Ed25519 signatures of the decisions")
    key_id: str = ""
    decisions: list[ApprovalDecision] = Field(default_factory=list)
    ignored: list[str] = Field(
        default_factory=list, description="decisions that do not count, each with its reason (bad signature, replay)"
    )

    @property
    def approved(self) -> bool:
        """True only when an authorized quorum approved and nothing was refused."""
        return self.status == "approved"
