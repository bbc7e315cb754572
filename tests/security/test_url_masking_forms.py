"""A URL's or DSN's secret is masked whole, in every form libpq reads it (review of the masking helper).

The helper matched patterns that stopped a secret at punctuation libpq takes as part of it: ``?password=S3cret,PW``
was masked ``?password=***,PW``, and that tail was sealed in the trail as the system of record's destination, shown
to gRPC callers and in CLI errors. A raw ``/`` in a URL password turned masking off, a raw ``@`` left what libpq
then reads as the host name (``PW@127.0.0.1``) to its error, ``?pass%77ord=`` (libpq decodes the name) was not
taken for a password, and the document-source refusal echoed the deployment's database URLs with their passwords.

Each test uses its own marker strings: the helper remembers every secret it has seen in the process, so a marker
shared with another test could be masked for that reason alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.linear_time import in_linear_time

MASK = "***"


def _absent(text: str, *parts: str) -> None:
    for part in parts:
        assert part not in text, f"{part!r} survives in {text!r}"


@pytest.mark.parametrize("c", [",", ";", ")", "]", "}", "'", '"', "#", "(", "[", "{", "<", ">"])
def test_a_query_password_is_masked_whole_whatever_punctuation_it_holds(c: str) -> None:
    """libpq takes a query value up to the next "&": the pattern stopped at ``, ; ) ] } ' "``."""
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    head, tail = f"QvHead{ord(c)}x", f"QvTail{ord(c)}y"
    url = f"postgresql://postgres@127.0.0.1:5432/db?password={head}{c}{tail}&sslmode=require"
    masked = mask_url(url)
    _absent(masked, head, tail)
    assert masked == "postgresql://postgres@127.0.0.1:5432/db?password=***&sslmode=require"
    # the whole value is remembered: a driver quoting it later is masked
    _absent(mask_text(f'invalid value: "{head}{c}{tail}"'), head, tail)


@pytest.mark.parametrize("c", [",", ";", ")", "]", "}", "'", '"'])
def test_free_text_runs_a_query_password_to_the_next_ampersand_or_blank(c: str) -> None:
    from flytekitplugins.aios_core.redact import mask_text

    head, tail = f"FtHead{ord(c)}x", f"FtTail{ord(c)}y"
    out = mask_text(f"cannot open postgresql://u@h/db?password={head}{c}{tail}&sslmode=require: refused")
    _absent(out, head, tail)
    assert "sslmode=require" in out


@pytest.mark.parametrize(
    "dsn",
    [
        "host=127.0.0.1 user=user password=DsnHeadA,DsnTailA dbname=nope",
        "host=127.0.0.1 user=user password=DsnHeadA;DsnTailA dbname=nope",
        r"host=127.0.0.1 user=user password=DsnHeadA\ DsnTailA dbname=nope",
        "host=127.0.0.1 user=user password='DsnHeadA DsnTailA' dbname=nope",
        "host=127.0.0.1 user=user PASSWORD = DsnHeadA)DsnTailA dbname=nope",
        "host=127.0.0.1 user=user sslpassword=DsnHeadA'DsnTailA dbname=nope",
    ],
)
def test_a_keyword_dsn_password_is_masked_as_libpq_reads_it(dsn: str) -> None:
    """libpq reads a bare value to the next blank (``\\ `` escaping one): ``S3cret,PW`` was masked ``***,PW``."""
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    masked = mask_url(dsn)
    _absent(masked, "DsnHeadA", "DsnTailA")
    assert masked.startswith("host=127.0.0.1 user=user ") and masked.endswith(" dbname=nope")
    # in free text too (a DSN quoted by a driver or a log line)
    _absent(mask_text(f"connect({dsn.replace('DsnHeadA', 'DsnHeadB').replace('DsnTailA', 'DsnTailB')})"), "DsnTailB")


def test_a_raw_slash_in_the_url_password_is_masked() -> None:
    """The userinfo pattern needed an "@" before the first "/": ``user:S3cret/PW@host`` was shown whole."""
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    url = "postgresql://user:Sl4shPort/Sl4shDb@127.0.0.1:5432/nope"
    assert mask_url(url) == "postgresql://user:***@127.0.0.1:5432/nope"
    # libpq reads "user:Sl4shPort" as host and port: its error quotes the password's first piece
    _absent(mask_text('invalid integer value "Sl4shPort" for connection option "port"'), "Sl4shPort")
    _absent(mask_text('database "Sl4shDb@127.0.0.1:5432/nope" does not exist'), "Sl4shDb")
    # free text, never seen before
    out = mask_text("connection to postgresql://user:Sl4shFreeA/Sl4shFreeB@127.0.0.1:5432/nope failed")
    _absent(out, "Sl4shFreeA", "Sl4shFreeB")
    assert out == f"connection to postgresql://user:{MASK}@127.0.0.1:5432/nope failed"


def test_a_raw_at_sign_in_the_url_password_leaves_nothing_to_libpq_s_error() -> None:
    """libpq splits the userinfo at the first "@", the mask at the last: its error named ``PW@127.0.0.1`` as host."""
    from psycopg.conninfo import conninfo_to_dict

    from flytekitplugins.aios_core.redact import mask_text, mask_url

    url = "postgresql://user:AtHeadS3cret@PW@127.0.0.1:5432/nope"
    masked = mask_url(url)
    assert masked == "postgresql://user:***@127.0.0.1:5432/nope"
    host = conninfo_to_dict(url)["host"]  # what libpq reads (no connection is made)
    assert host == "PW@127.0.0.1"
    out = mask_text(f"failed to resolve host '{host}': [Errno -2] Name or service not known")
    _absent(out, "PW", "AtHeadS3cret")
    _absent(mask_text(f'connection to server at "{host}", port 5432 failed'), "PW")


def test_a_raw_ampersand_in_a_query_password_is_masked_and_its_tail_remembered() -> None:
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    masked = mask_url("postgresql://u@127.0.0.1:1/db?password=AmpHeadX&AmpTailX&sslmode=require")
    _absent(masked, "AmpHeadX", "AmpTailX")
    assert masked.endswith("&sslmode=require")
    # libpq's own refusal of that URL
    _absent(mask_text('missing key/value separator "=" in URI query parameter: "AmpTailX"'), "AmpTailX")


@pytest.mark.parametrize("name", ["pass%77ord", "PASSWORD", "Pass%57ord", "ssl%70assword", "password%3D"])
def test_a_parameter_name_is_compared_decoded_and_case_folded(name: str) -> None:
    """libpq decodes a query parameter's name: ``?pass%77ord=`` is its password and was shown."""
    from flytekitplugins.aios_core.redact import mask_text, mask_url

    secret = f"PctSecret{abs(hash(name)) % 10_000}"
    sep = "" if name.endswith("%3D") else "="
    url = f"postgresql://user@127.0.0.1:5432/nope?{name}{sep}{secret}&sslmode=require"
    _absent(mask_url(url), secret)
    _absent(mask_text(url.replace(secret, secret + "Free")), secret + "Free")


def test_what_is_not_secret_stays_as_written() -> None:
    from flytekitplugins.aios_core.redact import mask_url

    for url in (
        "postgresql://db.internal/documents?sslmode=require&application_name=aios",
        "postgresql://u@h/db?user=a@b.example",
        "postgresql://h1:5432,h2:5433/db?target_session_attrs=read-write",
        "host=db port=5432 user=app dbname=aios sslmode=require",
        "s3://bucket/prefix/",
        "/data/documents",
    ):
        assert mask_url(url) == url


def test_the_document_sources_refusal_masks_the_deployment_s_urls(tmp_path: Path) -> None:
    """The refusal listed the configured roots as given: a database root's password reached the launcher."""
    from tasks.documents.sources import check_allowed

    folder = tmp_path / "docs"
    folder.mkdir()
    allowed = (
        f"{folder},postgresql://docs:S3cretDocsPW@127.0.0.1:5432/review_docs,"
        "postgresql://docs@127.0.0.1:5432/db2?password=DocsQHead,DocsQTail"
    )
    with pytest.raises(ValueError, match="is not one of this deployment's document sources") as err:
        check_allowed(str(tmp_path / "elsewhere"), allowed, on_cluster=False)
    text = str(err.value)
    _absent(text, "S3cretDocsPW", "DocsQHead", "DocsQTail")
    assert str(folder) in text and f"postgresql://docs:{MASK}@127.0.0.1:5432/review_docs" in text


def test_the_document_sources_refusal_masks_a_password_split_by_its_comma(tmp_path: Path) -> None:
    """The list is comma-separated: a raw "," in a root's password splits it in two roots; neither half is shown."""
    from tasks.documents.sources import check_allowed

    allowed = f"{tmp_path},postgresql://docs:SplitHead,SplitTail@127.0.0.1:5432/db"
    with pytest.raises(ValueError) as err:
        check_allowed("postgresql://other@127.0.0.1:5432/db", allowed, on_cluster=False)
    _absent(str(err.value), "SplitHead", "SplitTail")


def test_the_system_of_record_destination_keeps_no_part_of_a_password() -> None:
    """The destination is sealed in claims and ``action_authorized`` records: ``,SorPW`` stayed there forever."""
    from flytekitplugins.aios_connectors.system_of_record import destination_of

    url = "postgresql://postgres@127.0.0.1:5432/review_sor?password=SorHead,SorPW"
    destination = destination_of("document_actions", url)
    _absent(destination, "SorHead", "SorPW")
    assert destination == "document_actions@postgresql://postgres@127.0.0.1:5432/review_sor?password=***"
    for c in ";)]}'\"":
        _absent(destination_of("t", url.replace(",", c).replace("Sor", f"Sor{ord(c)}")), f"Sor{ord(c)}PW")
    slashed = destination_of("t", "postgresql://app:SorSl4sh/SorSl4shB@db:5432/aios")
    assert slashed == f"t@postgresql://app:{MASK}@db:5432/aios"
    # the form stored claims already name is kept: a retry after an upgrade finds its own claims
    assert destination_of("t", "postgresql://app:pw-42xy@db:5432/aios") == f"t@postgresql://app:{MASK}@db:5432/aios"


def test_the_system_of_record_connection_error_keeps_no_part_of_a_password() -> None:
    """The connector's error (to gRPC callers and its log) named the URL as the pattern masked it."""
    from flytekitplugins.aios_connectors.system_of_record import _connect

    url = "postgresql://postgres@127.0.0.1:1/review_nope?password=ConnHead,ConnTail&connect_timeout=2"
    with pytest.raises(ConnectionError) as err, _connect(url):
        pass
    _absent(str(err.value), "ConnHead", "ConnTail")


def test_settings_remember_document_sources_and_named_system_of_record_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver quoting a configured password bare is masked: the document sources' and a served system of record's
    ``AIOS_SYSTEM_OF_RECORD_URL_<NAME>`` were not remembered."""
    from flytekitplugins.aios_core.redact import mask_text
    from flytekitplugins.aios_core.settings import load_settings

    monkeypatch.setenv("AIOS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AIOS_DOCUMENT_SOURCES", f"{tmp_path},postgresql://docs:Rem3mberDocs%zz@127.0.0.1:5432/db")
    monkeypatch.setenv("AIOS_SYSTEM_OF_RECORD_URL_FINANCE", "postgresql://u@127.0.0.1/db?password=Rem3mberFin,Tail")
    load_settings()
    _absent(mask_text('invalid percent-encoded token: "Rem3mberDocs%zz"'), "Rem3mberDocs")
    _absent(mask_text("value Rem3mberFin,Tail quoted"), "Rem3mberFin", ",Tail")


@pytest.mark.parametrize("unit", ["a.", "a-", "password", "x.password", "pg.x://"])
def test_masking_a_long_log_record_takes_linear_time(unit: str) -> None:
    """Every log record of the process is masked: a name pattern that could start at every word boundary inside a
    run such as ``a.a.a...`` rescanned the run from each (5 s for 8,000 characters, 10 minutes for 100,000, in
    the code before the review of 2026-12-06); a name now starts only where its run starts."""
    from flytekitplugins.aios_core.redact import mask_text

    masked = in_linear_time(mask_text, lambda n: unit * (n // len(unit)) + " password=S3cretLinear", 200_000, 1.0)
    assert "S3cretLinear" not in masked
