"""Key files: a private key readable by others is named in a warning; a named key that is missing is an error,
never a new random key (defect 20 of the review)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from flytekitplugins.aios_core.settings import get_settings

SIGNING_PEM = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()


def test_a_shared_key_file_is_used_with_a_warning_and_a_missing_named_key_is_never_generated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 0644 approvals key was used without a word; a host configured with a key path that was not mounted
    generated a new private key there, and its decisions verified nowhere else."""
    import logging

    from flytekitplugins.aios_approvals import signing
    from flytekitplugins.aios_core.errors import ConfigError

    pem = tmp_path / "shared.pem"
    pem.write_text(SIGNING_PEM)
    pem.chmod(0o644)
    settings = get_settings().model_copy(update={"approvals_key": f"file:{pem}"})
    with caplog.at_level(logging.WARNING):
        signing.private_key(settings)
    assert any("mode 644" in m and "chmod 600" in m for m in caplog.messages), caplog.messages
    missing = tmp_path / "not-mounted" / "approvals.pem"
    settings = get_settings().model_copy(update={"approvals_key": f"file:{missing}"})
    for load in (signing.private_key, signing.public_key):
        with pytest.raises(ConfigError, match="does not exist"):
            load(settings)
    assert not missing.exists() and not missing.parent.exists()


def test_a_key_generated_under_a_long_name_or_a_tilde_path_lands_where_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-review R32b: a key file name of 240 characters (which the shell makes) could not be generated, its temporary
    name beside it exceeding 255 bytes, and the error named the temporary file; and ``file:~/keys/signing.pem`` was
    generated in a folder named ``~`` under the current folder while a trusted checkpoint key of the same spelling is
    read from the home folder."""
    from flytekitplugins.aios_audit.trust import _read
    from flytekitplugins.aios_core.keys import ed25519_pem

    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    long = keys / ("k" * 236 + ".pem")
    pem = ed25519_pem(f"file:{long}", what="signing key")
    assert pem is not None and long.read_bytes() == pem and [p.name for p in keys.iterdir()] == [long.name]

    home, work = tmp_path / "a-home", tmp_path / "a-work"
    home.mkdir(mode=0o700)
    work.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    pem = ed25519_pem("file:~/keys/signing.pem", what="signing key")
    assert pem is not None and (home / "keys" / "signing.pem").read_bytes() == pem
    assert not (work / "~").exists()
    assert _read("file:~/keys/signing.pem") == (pem, str(home / "keys" / "signing.pem"))  # where a verifier reads it
