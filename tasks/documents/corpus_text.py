"""Labelled business documents as text: invoices, claims, contracts and correspondence.

Deterministic for a seed. Each document carries typed ground truth (label, amount, currency, parties,
date) and planted personal data, so that classification, extraction and redaction can be measured.
About a quarter of the documents are "hard": a long generic cover note comes first and the
type-revealing body only after it, beyond the first 128 tokens a cheap model reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

LABELS = ("invoice", "claim", "contract", "correspondence")
CURRENCIES = ("EUR", "USD", "GBP", "CHF")
_FIRST = ("Anna", "Ben", "Carla", "David", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jonas", "Kofi", "Lena", "Marta")
_LAST = ("Schmidt", "Okafor", "Rossi", "Dubois", "Novak", "Larsen", "Keller", "Moreau", "Silva", "Jansen", "Weber")
_CO = ("Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Acme", "Tyrell")
_SUFFIX = ("Ltd", "GmbH", "Inc", "LLC", "plc", "B.V.", "S.A.")
_ITEMS = (
    "consulting hours",
    "cloud hosting",
    "office chairs",
    "laptop repair",
    "software licences",
    "freight",
    "catering",
    "translation services",
    "security audit",
    "training workshop",
    "spare parts",
    "printing",
)
_INCIDENTS = ("water damage", "vehicle collision", "theft", "fire", "storm damage")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_COVER = (
    "Dear {name},\n\nI hope this message finds you well. Following up on our call last week and on the points we "
    "discussed with your colleagues, I am sending the document below for your records. Please read it at your "
    "convenience and let me know if anything is unclear or if you would like us to arrange a meeting. Our team "
    "remains available for any question about the matter, the timeline or the people involved, and we are grateful "
    "for the continued cooperation between our organisations over the past months. As always, thank you for your "
    "patience, your time and your trust in our work. With kind regards from all of us at {co}.\n\n"
)


@dataclass
class DocText:
    """One generated document: text plus ground truth."""

    doc_id: str
    label: str
    text: str
    amount: float | None = None
    currency: str | None = None
    parties: list[str] = field(default_factory=list)
    date: str = ""
    hard: bool = False
    pii: list[tuple[str, str]] = field(default_factory=list)


def _company(r: random.Random) -> str:
    kind = r.choice(("Trading", "Logistics", "Systems", "Insurance", "Partners", "Labs"))
    return f"{r.choice(_CO)} {kind} {r.choice(_SUFFIX)}"


def _person(r: random.Random) -> str:
    return f"{r.choice(_FIRST)} {r.choice(_LAST)}"


def _date(r: random.Random) -> tuple[str, str]:
    y, m, d = r.randint(2023, 2025), r.randint(1, 12), r.randint(1, 28)
    iso = f"{y:04d}-{m:02d}-{d:02d}"
    shown = r.choice((iso, f"{d} {_MONTHS[m - 1]} {y}", f"{d:02d}/{m:02d}/{y}"))
    return iso, shown


def money(amount: float, currency: str, r: random.Random) -> str:
    """Amount as written in documents: ``EUR 12,500.00`` / ``12,500.00 EUR`` / ``€12,500.00``."""
    sym = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF "}[currency]
    num = f"{amount:,.2f}"
    return r.choice((f"{currency} {num}", f"{num} {currency}", f"{sym}{num}"))


def _email_addr(r: random.Random, person: str) -> str:
    user = person.lower().replace(" ", r.choice((".", "_", "")))
    tag = r.choice(("", "+billing", str(r.randint(1, 99))))
    return f"{user}{tag}@{r.choice(_CO).lower()}.{r.choice(('com', 'de', 'co.uk', 'io'))}"


def _phone(r: random.Random) -> str:
    return r.choice(
        (
            f"+44 20 {r.randint(7000, 7999)} {r.randint(1000, 9999)}",
            f"+1 ({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
            f"+49 30 {r.randint(1000000, 9999999)}",
            f"({r.randint(201, 989)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
        )
    )


def _amount(r: random.Random, label: str, big: bool) -> float:
    if big:
        return round(r.uniform(10_500, 95_000), 2)
    return round(r.uniform(40, 9_800) if label == "invoice" else r.uniform(150, 9_500), 2)


def _body(label: str, r: random.Random, a: str, b: str, amt: str, shown: str, person: str) -> str:
    item, n = r.choice(_ITEMS), r.randint(1000, 99999)
    if label == "invoice":
        return (
            f"INVOICE No. {r.choice(('INV', 'BILL', 'RE'))}-{n}\nIssued by: {a}\nBill to: {b}\nInvoice date: {shown}\n"
            f"Description: {item}, {r.randint(1, 40)} units\nPayment terms: net {r.choice((14, 30, 45))} days\n"
            f"Total amount due: {amt}\nPlease transfer the amount due to the account below."
        )
    if label == "claim":
        return (
            f"INSURANCE CLAIM FORM - Claim reference CLM-{n}\nClaimant: {person}\nInsurer: {a}\n"
            f"Date of loss: {shown}\nIncident: {r.choice(_INCIDENTS)} affecting {item}\nClaim amount: {amt}\n"
            "I declare that the information given is true; please settle this claim."
        )
    if label == "contract":
        return (
            f"SERVICE AGREEMENT\nThis agreement is made on {shown} between {a} (the Supplier) and {b} (the Customer).\n"
            f"1. Scope: the Supplier shall provide {item}.\n2. Term: {r.randint(12, 48)} months, renewable.\n"
            f"3. Fees: the contract value is {amt}.\n"
            "4. Governing law and termination clauses apply. Signed by both parties."
        )
    topic = r.choice(
        (
            "the delivery schedule",
            "our meeting next Tuesday",
            "the new office address",
            "your feedback",
            "the conference invitation",
            "a change of contact person",
            "the holiday closure",
        )
    )
    return (
        f"Subject: {topic}\nDear {person},\nThank you for your letter of {shown} about {topic}. "
        f"We at {a} wanted to let you know that {b} will follow up shortly. "
        f"{r.choice(('We appreciate your patience.', 'Please keep us informed.', 'No action is needed from you.'))}\n"
        f"Best regards"
    )


def make_doc(
    doc_id: str, label: str, r: random.Random, *, big: bool = False, hard: bool = False, vague: bool = False
) -> DocText:
    """One labelled document (``big``: above the approval threshold; ``vague``: no type-revealing body)."""
    a, b, person = _company(r), _company(r), _person(r)
    iso, shown = _date(r)
    currency = r.choice(CURRENCIES)
    has_amount = label in {"invoice", "claim", "contract"}
    value = _amount(r, label, big) if has_amount else None
    amt = money(value, currency, r) if value is not None else ""
    pii = [("EMAIL", _email_addr(r, person)), ("PHONE", _phone(r))]
    text = _body(label, r, a, b, amt, shown, person)
    if vague:
        value = None
        ref = r.randint(100, 999)
        text = f"Re: {r.choice(_ITEMS)}\nPlease find the document we discussed, dated {shown}, from {a}. Ref {ref}."
    text += f"\nContact: {person}, {pii[0][1]}, tel. {pii[1][1]}"
    if hard:
        text = _COVER.format(name=_person(r), co=a) + text
    return DocText(doc_id, label, text, value, currency if value is not None else None, [a, b], iso, hard, pii)


def generate(
    n: int, seed: int, *, hard_share: float = 0.25, big_share: float = 0.1, vague_share: float = 0.04
) -> list[DocText]:
    """``n`` labelled documents, classes balanced, deterministic for ``seed``."""
    r = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    out = []
    for i in range(n):
        label = LABELS[i % len(LABELS)]
        big = label in {"invoice", "claim"} and r.random() < big_share * 2
        hard, vague = r.random() < hard_share, r.random() < vague_share
        out.append(make_doc(f"doc-{seed}-{i:06d}", label, r, big=big, hard=hard, vague=vague))
    return out
