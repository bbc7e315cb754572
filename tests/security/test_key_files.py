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
