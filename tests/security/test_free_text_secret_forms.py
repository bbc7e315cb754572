"""Credentials in free text that no name before them marks, masked in messages and redacted from documents.

Left open by the notes of 2026-12-06 and reproduced on 5dda64f: the masking every log line, error and CLI message
passes through (``mask_text``) left a JWT in ``?jwt=eyJ...`` or ``invalid token eyJ...``, a GitHub, Slack, OpenAI or
Stripe key quoted by a client's error, the text of ``<password>...</password>`` (a SOAP fault quoting its request,
CDATA too) and the value of ``--password S3cret`` (a failed command's argument list) as written; the document
pipeline's redaction, which recognised those token shapes, left ``mysql --password S3cret`` and a labelled PIN
(``PIN: 4821``) in the text a model, the trail and the system of record see.

Each test uses its own marker strings: the helper remembers every secret it has seen in the process, so a marker
shared with another test could be masked for that reason alone.
"""

from __future__ import annotations

import logging

import pytest

from tests.linear_time import in_linear_time

MASK = "***"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJGcmVlVGV4dCJ9.c2lnbmF0dXJlRnJlZVRleHQ"


def _absent(text: str, *parts: str) -> None:
    for part in parts:
        assert part not in text, f"{part!r} survives in {text!r}"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"GET https://api.example/v1/items?jwt={JWT}&page=2 failed: 401", JWT),
        (f"error: invalid token {JWT}", JWT),
        ("GET https://api.example/x?jwt=OpaqueJwtValue9&page=2 failed", "OpaqueJwtValue9"),
        ("push refused for ghp_FreeTextGitHubToken0123456789abcdefgh", "ghp_FreeTextGitHubToken0123456789abcdefgh"),
        ("github_pat_11FreeTextFineGrained_0123456789ab rejected", "github_pat_11FreeTextFineGrained_0123456789ab"),
        ("slack said invalid_auth for xoxb-123456789012-FreeTextSlack", "xoxb-123456789012-FreeTextSlack"),
        ("openai: incorrect API key: sk-proj-FreeTextOpenAiKey0123456789", "sk-proj-FreeTextOpenAiKey0123456789"),
        ("stripe: no such key sk_live_FreeTextStripe01234", "sk_live_FreeTextStripe01234"),
        ("google: key AIzaSyFreeTextGoogleKey0123456789abcdef expired", "AIzaSyFreeTextGoogleKey0123456789abcdef"),
        ("AccessDenied for AKIAFREETEXTAWSKEY01", "AKIAFREETEXTAWSKEY01"),
        ("google: key AIzaSyFreeTextGoogleKeyEndsInDash01234- expired", "AIzaSyFreeTextGoogleKeyEndsInDash01234-"),
        ("key AIzaSyFreeTextGoogleKeyThenSuffix012345-prod denied", "AIzaSyFreeTextGoogleKeyThenSuffix012345"),
    ],
)
def test_a_token_known_by_its_shape_is_masked_wherever_it_stands(text: str, secret: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    masked = mask_text(text)
    _absent(masked, secret)
    assert MASK in masked


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("soap:Fault <password>XmlFreeS3cret</password> <user>bob</user>", "XmlFreeS3cret", "<user>bob</user>"),
        ("<ns2:Password>XmlNsFreeS3cret</ns2:Password>", "XmlNsFreeS3cret", "</ns2:Password>"),
        ('<apiKey scope="all">XmlAttrFreeKey</apiKey><total>95.00</total>', "XmlAttrFreeKey", "<total>95.00</total>"),
        ("<password><![CDATA[Xml<Cdata]]Free]]></password> rest", "Xml<Cdata]]Free", "</password> rest"),
        ("request cut short: <client_secret><![CDATA[XmlCutFreeSecret", "XmlCutFreeSecret", "request cut short:"),
        ("<password>\n  <![CDATA[XmlPrettyFree]]>\n</password> after", "XmlPrettyFree", "</password> after"),
        ("<password><!-- c -->XmlCommentFree</password> after", "XmlCommentFree", "</password> after"),
        ("<password><![CDATA[ab]]]]><![CDATA[>XmlSplitFree]]></password> x", "XmlSplitFree", "</password> x"),
        ("<password><![CDATA[ab]]>XmlTailFree</password> x", "XmlTailFree", "</password> x"),
    ],
)
def test_the_text_of_an_element_named_for_a_secret_is_masked(text: str, secret: str, kept: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    masked = mask_text(text)
    _absent(masked, secret, secret[:6])
    assert kept in masked


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("command failed: mysql --password FlagFreeS3cret -h db", "FlagFreeS3cret"),
        ("aios run --db-password 'Flag Free Quoted' --verbose", "Flag Free Quoted"),
        ('tool --api-key "FlagFreeApiKey" --x', "FlagFreeApiKey"),
        ("tool --client-secret 'FlagFreeUnclosed and the rest", "FlagFreeUnclosed"),
        ("tool --token FlagFreeTok --password=FlagFreeEq", "FlagFreeTok"),
        ("Command '['false', '--password', 'FlagFreeArgv']' returned non-zero exit status 1.", "FlagFreeArgv"),
        ('["mysql", "--password", "FlagFree\\"Esc"] failed', 'FlagFree\\"Esc'),
        ("mysql --password 'it'\"'\"'s FlagFreeShlex' -h db", "FlagFreeShlex"),
        ("mysql --password \\\n    FlagFreeContinued -h db", "FlagFreeContinued"),
        ('x --password "FlagFree\\"Quoted rest" y', "Quoted rest"),
        ("x --password $'FlagFreeDollar' y", "FlagFreeDollar"),
        ("Command '['mysqldump', '--single-transaction', '--password', 'FlagFreeAfterFlag']'", "FlagFreeAfterFlag"),
        ("['mysqldump',\n '--password',\n 'FlagFreePformat']", "FlagFreePformat"),
        ('[\n  "mysql",\n  "--token",\n  "FlagFreeJsonDump"\n]', "FlagFreeJsonDump"),
        ("[b'mysql', b'--password', b'FlagFreeBytes']", "FlagFreeBytes"),
        ("mysql --password = FlagFreeSpacedEq db", "FlagFreeSpacedEq"),  # a pair, as before the flag form
        ("  --db-password : FlagFreeSpacedColon", "FlagFreeSpacedColon"),
    ],
)
def test_the_value_after_a_flag_named_for_a_secret_is_masked(text: str, secret: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    _absent(mask_text(text), secret)


def test_what_is_not_secret_stays_as_written() -> None:
    from flytekitplugins.aios_core.redact import mask_text

    for text in (
        "run --limit 5 --verbose --name bob --chunk-size 256",
        "<total>95.00</total> <name>Invoice 7</name> <user>bob</user>",
        "a -- password b",
        "eyJ alone is no token; sk- neither; xox too",
        "<password></password> is empty",
        "error: pass --password <password> or set AIOS_DB_PASSWORD; see docs/security.md",
        "usage: aios login --token <token> --server <url> [--verbose]",
        "refreshing <AccessToken expires=3600> failed: connection reset by peer",
        "<password /> connection refused 10.0.0.1",
    ):
        assert mask_text(text) == text


def test_a_log_record_quoting_a_token_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    """Every log record of the process passes through the masking once settings loading installed it."""
    from flytekitplugins.aios_core.redact import mask_logs

    mask_logs()
    with caplog.at_level(logging.WARNING, logger="aios.test.free_text"):
        logging.getLogger("aios.test.free_text").warning("webhook answered 401 for %s", f"?jwt={JWT}")
    _absent(caplog.text, JWT)


def test_a_flag_s_value_of_escaped_quotes_is_read_once() -> None:
    """An unclosed double-quoted value of escaped quotes (``--password "\\"\\"...``) was read 512 characters ahead
    for every two characters it went on (0.9 s for 200,000 characters; the review of 2026-12-06)."""
    from flytekitplugins.aios_core.redact import mask_text
    from tasks.documents.protect import redact

    def make(n: int) -> str:
        return '--password "' + '\\"' * (n // 2) + " password=S3cretEscapedFree"

    masked, red = in_linear_time(lambda t: (mask_text(t), redact(t)), make, 200_000, 0.5)
    assert "S3cretEscapedFree" not in masked and "S3cretEscapedFree" not in red.text


@pytest.mark.parametrize(
    "unit",
    [
        "<password><![CDATA[",
        "<password>",
        "<password>x<",
        "--password '",
        '--token "',
        "--password \\",
        "--password $'",
        "'--password', '",
        "<a",
        "eyJabcdefgh.",
        "--x ",
        "a=",  # these three took 90 s, 7 s and 14 s for 100,000 characters before (every name's value was read)
        "a:",
        "PIN:",
    ],
)
def test_masking_stays_linear_on_repeated_openings(unit: str) -> None:
    """Each form ends its tries within bounds: an unclosed CDATA section, element or quote repeated (200,000
    characters) is masked in well under a second; so is a run of names that say nothing secret, each with a value
    (the review of this change found the helper's pairs reading the rest of the text again from each name)."""
    from flytekitplugins.aios_core.redact import mask_text

    masked = in_linear_time(mask_text, lambda n: unit * (n // len(unit)) + " password=S3cretLinearFree", 200_000, 1.0)
    assert "S3cretLinearFree" not in masked


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("To connect run mysql --password DocFlagS3cret -h db.internal", "DocFlagS3cret"),
        ("aios x --db-password 'Doc Flag Quoted' --y", "Doc Flag Quoted"),
        ("mysql --password 'it'\"'\"'s DocFlagShlex' -h db", "DocFlagShlex"),
        ("Your new card PIN: 4821. Keep it safe.", "4821"),
        ("Your PIN is 7305.", "7305"),
        ("PIN-Code: 0942", "0942"),
        ("pin code: 6617\nValid until 12/2027", "6617"),
        ("PIN: 5193 (do not share)", "5193"),
        ("Stripe key sk_live_DocStripeKey0123456 attached", "sk_live_DocStripeKey0123456"),
    ],
)
def test_a_document_s_flag_value_pin_and_stripe_key_are_redacted(text: str, secret: str) -> None:
    from tasks.documents.protect import redact

    red = redact(text)
    _absent(red.text, secret)
    assert red.secrets == 1, red.counts


@pytest.mark.parametrize(
    "text",
    [
        "run --token-limit 50 now",
        "PIN code: 560001 Bengaluru",  # a postal PIN code
        "PIN: 1234,56 EUR",
        "Invoice 2024-001, Total: 95.00 EUR, 4 pins: 1234 boxes",
        "Spin: 1234",
        "Part: Hinge pin: 1500 units, Total: 180.00 EUR",
        "Item: Steel pin = 2500 pcs @ 0.12 EUR",
        "Pin: 1200 mm",
        "PIN: 2024-03-15",
        "Pin is 2024's bestseller",
        "mysql --password <password> -h db",
        "Files are shared --password protected-- via the portal.",  # "--" as a dash
        "The --secret ingredient is salt.",
        "use the --password flag",
        "PIN No.: 4410",  # a part's number
    ],
)
def test_a_document_s_counts_and_postal_codes_stay(text: str) -> None:
    from tasks.documents.protect import redact

    red = redact(text)
    assert red.text == text and red.secrets == 0, red.text
