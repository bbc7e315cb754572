"""Typed settings for the pack, loaded from ``config/profiles/<profile>.yaml``.

Precedence, highest first (documented once, here and in docs/configuration.md):

1. explicit overrides (command-line flags; ``get_settings(overrides=...)``),
2. environment variables (``ENV_VARS`` below: one ``AIOS_*`` variable per setting, plus ``AIOS_CONFIG_DIR``),
3. the profile file,
4. the defaults below.

Settings are built once per command (the CLI's root flags), per task body or per connector call, and passed
down the call chain: library functions take ``settings`` as a parameter and never resolve a process-wide
default themselves (``tests/config/test_settings_explicit.py`` holds the list of the entry points that may).
Each resolved value remembers where it came from (:meth:`Settings.sources`; ``aios config show``).

Variables that are not settings, because they are read before any settings exist or only by tests:
``BUILD_TIME_VARS`` (container images and notification recipients, read when workflow modules are imported for
``pyflyte register``/``package``) and ``DEBUG_VARS``.

Values may reference ``{state_dir}`` and ``{config_dir}``; relative paths are resolved against the
working directory at load time so that a task running in-process sees the same files as the CLI.

A ``./config`` found in the current folder is read only where it, its ``profiles/`` and the profile file are this
process's user's or root's and no one else may write them (:func:`local_path_problem`, review R9): from a shared
folder another local user's planted profile chose the policies, roles, approval and checkpoint keys of every
command. ``AIOS_CONFIG_DIR`` (or the ``config_dir`` override) and the source checkout's config/ are taken as they
are: the first is the caller's explicit choice, the second lies in the same tree as the code being run.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import stat
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from flytekitplugins.aios_core.errors import ConfigError

ENV_VARS: dict[str, str] = {
    "AIOS_PROFILE": "profile",
    "AIOS_STATE_DIR": "state_dir",
    "AIOS_AUDIT_STORE": "audit_store",
    "AIOS_POLICY_DIR": "policy_dir",
    "AIOS_PRINCIPAL": "principal",
    "AIOS_LAUNCHED_BY": "launched_by",
    "AIOS_SIGNING_KEY": "signing_key",
    "AIOS_LINEAGE_URL": "lineage_url",
    "AIOS_OTEL_EXPORTER": "otel_exporter",
    "AIOS_APPROVALS_BACKEND": "approvals_backend",
    "AIOS_APPROVALS_KEY": "approvals_key",
    "AIOS_APPROVALS_PUBLIC_KEY": "approvals_public_key",
    "AIOS_POLICY_ENGINE": "policy_engine",
    "AIOS_POLICY_BUDGET_MS": "policy_budget_ms",
    "AIOS_SYSTEM_OF_RECORD_URL": "system_of_record_url",
    "AIOS_SYSTEM_OF_RECORD_TABLES": "system_of_record_tables",
    "AIOS_CONNECTOR_INPUT_DIRS": "connector_input_dirs",
    "AIOS_DOCUMENT_SOURCES": "document_sources",
    "AIOS_DOCUMENT_TABLES": "document_tables",
    "AIOS_DATA_DIR": "data_dir",
    "AIOS_DOCUMENT_MODELS_DIR": "document_models_dir",
    "AIOS_RESULTS_DIR": "results_dir",
    "AIOS_VERIFY_WORKERS": "verify_workers",
    "AIOS_CODE_VERSION": "code_version",
    "AIOS_DIST_TIMEOUT_S": "dist_timeout_s",
    "AIOS_FAST_THRESHOLD_FLOOR": "fast_threshold_floor",
    "AIOS_STRONG_THRESHOLD_FLOOR": "strong_threshold_floor",
}
"""Each setting's environment variable (precedence 2)."""

BUILD_TIME_VARS: dict[str, str] = {
    "AIOS_IMAGE": "one image for every task (tasks/images.py)",
    "AIOS_IMAGE_REGISTRY": "registry of the images ImageSpec builds",
    "AIOS_IMAGE_TAG": "tag of those images (default: the package version)",
    "AIOS_IMAGE_BUILDER": "ImageSpec builder (`noop` keeps pre-built images)",
    "AIOS_GPU_BASE_IMAGE": "base image of the GPU training image",
    "AIOS_PIP_INDEX": "package index the image build installs from",
    "AIOS_FAILURE_EMAILS": "who the launch plans notify on failure",
}
"""Read when workflow modules are imported (registration, packaging), before any settings exist."""

SECRET_VARS: dict[str, str] = {
    "AIOS_CHECKPOINT_KEY_PEM": "Flyte secret the cluster profile names (`signing_key: env:AIOS_CHECKPOINT_KEY_PEM`)",
    "AIOS_APPROVAL_WEBHOOK_URL": "approval connector's webhook URL (Flyte secret, connector service only)",
    "AIOS_APPROVAL_WEBHOOK_SECRET": "HMAC key of that webhook (Flyte secret, connector service only)",
    "AIOS_APPROVAL_WEBHOOK_ALLOW_HTTP": "connector service only: allow a plain-http webhook (an in-cluster bridge)",
}
"""Secret material mounted by Flyte into the process that uses it: never a setting, never printed."""

DEBUG_VARS: dict[str, str] = {
    "AIOS_DEBUG": "print the traceback behind an `aios` error",
    "AIOS_TRAIN_FAULT": "tests: make a training worker fail at a given step",
    "AIOS_TEST_PG_INTEGRATE_PAUSE": "tests: pause the PostgreSQL integrator (crash tests)",
    "AIOS_TEST_PG_URL": "tests: the PostgreSQL server the suite uses",
    "AIOS_TEST_SEED": "tests: repeat a random test order",
    "AIOS_SKIP_APT": "scripts/setup.sh: skip the apt packages",
}

# variables that can change resolved settings: the cache key of get_settings()
_KEY_VARS = (*ENV_VARS, "AIOS_CONFIG_DIR")


def _checkout_of(module: Path) -> Path | None:
    """The folder five levels above this module's file: the source checkout when the pack is installed editable
    (``plugins/flyte-aios-core/flytekitplugins/aios_core/settings.py`` in it), for an installed wheel some folder above
    site-packages, and None where the module lies less deep (``/root/flytekitplugins/aios_core/settings.py``, code
    copied to an image's root): never an error at import."""
    parents = module.parents
    return parents[4] if len(parents) > 4 else None


_CHECKOUT = _checkout_of(Path(__file__).resolve())


class TrustedKeySetting(BaseModel):
    """A trusted checkpoint key with a validity end (key rotation): see docs/audit.md, 'Trusted keys'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(description="inline PEM, file:PATH (public or private PEM) or env:VAR")
    not_after: dt.datetime | None = Field(default=None, description="refuse checkpoints this key signed later")


MAX_APPROVAL_TIMEOUT_S = 366 * 86_400
"""The longest an approval request may stay open: a year and a day (the profile's ``approval_timeout_s`` and every
request's own timeout, :func:`flytekitplugins.aios_approvals.service.check_timeout`)."""


class Settings(BaseModel):
    """Resolved settings of one process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Literal["local", "cluster"] = "local"
    config_dir: Path = Field(description="folder holding profiles/, policies/, roles.yaml, models.yaml")
    state_dir: Path = Field(default=Path(".aios"), description="local state: audit DB, keys, approvals, reports")
    audit_store: str = Field(default="sqlite:///{state_dir}/audit.db", description="sqlite:///path or postgresql://")
    policy_dir: Path = Field(default=Path("{config_dir}/policies"))
    roles_file: Path = Field(default=Path("{config_dir}/roles.yaml"))
    models_file: Path = Field(default=Path("{config_dir}/models.yaml"))
    signing_key: str = Field(
        default="file:{state_dir}/keys/checkpoint-ed25519.pem",
        description="file:PATH (generated on first use locally) or env:VAR holding a PEM (cluster secret)",
    )
    trusted_checkpoint_keys: tuple[str | TrustedKeySetting, ...] = Field(
        default=(),
        description="keys whose checkpoint signatures verification accepts (PEM, file:PATH, env:VAR); the key a "
        "checkpoint embeds is never trusted by itself",
    )
    principal: str = Field(default="", description="who this process acts as; empty means the OS user")
    launched_by: str = Field(
        default="",
        description="who launched the run before it took its service identity (set by act_as); separation of "
        "duties keeps them from approving the run's requests",
    )
    lineage_url: str = Field(
        default="file:{state_dir}/lineage/events.jsonl",
        description="file:PATH, http(s)://, none; used only when OpenLineage is not configured the standard way "
        "(OPENLINEAGE_URL, OPENLINEAGE_CONFIG, openlineage.yml, OPENLINEAGE__*)",
    )
    lineage_queue_size: int = Field(default=10_000, ge=1, description="OpenLineage events queued before dropping")
    otel_exporter: Literal["none", "console", "memory", "otlp"] = Field(
        default="none",
        description="traces/metrics exporter when OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER are unset",
    )
    approvals_backend: Literal["local", "flyteremote"] = "local"
    approval_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        le=MAX_APPROVAL_TIMEOUT_S,
        allow_inf_nan=False,
        description="seconds an approval request stays open, at most a year and a day (profile only)",
    )
    approvals_key: str = Field(
        default="file:{state_dir}/keys/approvals-ed25519.pem",
        description="approval-decision signing key: file:PATH (generated on first use locally) or env:VAR",
    )
    approvals_public_key: str = Field(
        default="", description="file:PATH or env:VAR of the public key only (pods that verify, never decide)"
    )
    reports_dir: Path = Field(default=Path("{state_dir}/reports"))
    policy_engine: str = Field(default="cedar", description="policy engine kind (cedar, or one registered in code)")
    policy_budget_ms: float = Field(
        default=200.0, gt=0, allow_inf_nan=False, description="slower policy decisions deny (fail closed)"
    )
    system_of_record_url: str = Field(
        default="sqlite:///{state_dir}/system_of_record.db",
        description="where the system-of-record connector posts (sqlite:///, postgresql://, env:VAR)",
    )
    system_of_record_tables: str = Field(
        default="document_actions",
        description="tables a served system-of-record task may write (comma-separated; * and ? match any characters)",
    )
    connector_input_dirs: str = Field(
        default="",
        description="folders a served connector reads file inputs from (comma-separated); empty: object stores only",
    )
    document_sources: str = Field(
        default="",
        description="where a document batch may read (comma-separated folders, object-store prefixes, database URLs); "
        "empty: anywhere in a local run, nowhere in a task on a cluster",
    )
    document_tables: str = Field(
        default="documents",
        description="tables of a SQL document source a batch may read (comma-separated, exact names; the launch "
        "option sql_table names one); empty: none",
    )
    data_dir: str = Field(
        default="", description="third-party data (.data of scripts/fetch_data.sh); empty: the repo's"
    )
    document_models_dir: str = Field(
        default="{state_dir}/models/documents", description="trained document classifier and extractor artifacts"
    )
    results_dir: str = Field(default="", description="copy each batch's result tables here (local); empty: don't")
    verify_workers: int = Field(default=0, ge=0, le=2, description="processes `audit verify` uses; 0: 2 on 2+ CPUs")
    code_version: str = Field(default="", description="code version stamped on records; empty: package version")
    dist_timeout_s: float = Field(
        default=600.0, gt=0, allow_inf_nan=False, description="torch.distributed rendezvous timeout"
    )
    fast_threshold_floor: float = Field(
        default=0.8, gt=0, le=1, allow_inf_nan=False,
        description="lowest fast_threshold a document batch may be launched with (the deployment's, not the launch's)",
    )  # fmt: skip
    strong_threshold_floor: float = Field(
        default=0.7, gt=0, le=1, allow_inf_nan=False,
        description="lowest strong_threshold a document batch may be launched with; below it documents go to review",
    )  # fmt: skip

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def sources(self) -> dict[str, str]:
        """Where each value came from: ``flag``, ``env AIOS_*``, ``profile <file>`` or ``default``."""
        return dict(self._sources)

    def as_env(self) -> dict[str, str]:
        """These settings as ``AIOS_*`` variables, for a child process (``aios demo`` starts pyflyte and aios):
        every value that came from a flag or the environment, plus the profile, config dir, state dir and store,
        so the child resolves exactly these settings (its own profile file fills in the rest)."""
        field_vars = {field: var for var, field in ENV_VARS.items()}
        fields = {"profile", "state_dir", "audit_store"}
        given = {f for f, src in self._sources.items() if src == "flag" or src.startswith("env ")}
        fields |= given & set(field_vars)
        out = {"AIOS_CONFIG_DIR": str(self.config_dir)}
        for field in sorted(fields):
            value = str(getattr(self, field))
            if not value.startswith("env:"):  # a secret reference: the child inherits the variable it names
                out[field_vars[field]] = value
        return out

    @property
    def actor(self) -> str:
        """The principal this process acts as (``AIOS_PRINCIPAL`` or config, else the OS user)."""
        return self.principal or f"user:{getpass.getuser()}"

    def audit_url(self) -> str:
        """Audit store URL with ``{state_dir}`` expanded."""
        return self.audit_store

    def masked(self) -> dict[str, Any]:
        """The settings as JSON values, every credential masked: what may be printed or logged."""
        from flytekitplugins.aios_core.redact import mask_text

        return {k: mask_text(v) if isinstance(v, str) else v for k, v in self.model_dump(mode="json").items()}

    def __repr_args__(self) -> Any:
        from flytekitplugins.aios_core.redact import mask_text

        return [(k, mask_text(v) if isinstance(v, str) else v) for k, v in super().__repr_args__()]


_lock = threading.Lock()
_cached: dict[tuple[tuple[str, str], ...], Settings] = {}


def default_config_dir() -> Path:
    """``AIOS_CONFIG_DIR``, else ``./config`` when it has profiles, else the source checkout's config/ (an editable
    install run from any folder), else ``./config`` (an installed wheel: the error then names that folder). A
    ``./config`` is checked before anything is read from it (:func:`load_settings`, :func:`local_path_problem`)."""
    return _config_dir()[0]


def _checkout_config() -> Path | None:
    """The source checkout's config/ (an editable install), or None (an installed wheel, code copied to an image)."""
    if _CHECKOUT is not None and (_CHECKOUT / "plugins" / "flyte-aios-core").is_dir():
        return _CHECKOUT / "config"
    return None


def _config_dir() -> tuple[Path, Path | None]:
    """The config folder, and the ``./config`` of the current folder it is when it is one (else None): that one must
    pass :func:`local_path_problem` before its profile is read. ``AIOS_CONFIG_DIR`` is the caller's explicit choice
    and the checkout's config/ lies in the same tree as the code being run: both are taken as they are, also where the
    current folder is the checkout."""
    env = os.environ.get("AIOS_CONFIG_DIR")
    if env:
        return Path(env).resolve(), None
    local = Path.cwd() / "config"
    checkout = _checkout_config()
    found = (local / "profiles").is_dir()
    if not found and checkout is not None and (checkout / "profiles").is_dir():
        return checkout, None
    resolved = local.resolve()
    if checkout is not None and resolved == checkout.resolve():
        return resolved, None
    return resolved, local


def _owner_problem(path: Path, st: os.stat_result) -> str | None:
    """Why what ``path`` names (its status ``st``, links followed) may hold another local user's content: owned by
    someone other than this process's user or root, or writable by its group or others; None where it may not."""
    if st.st_uid not in (os.geteuid(), 0):
        return f"{path} is owned by uid {st.st_uid}, not by this process's user (uid {os.geteuid()}) or root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} may be written by its group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def local_path_problem(path: Path) -> str | None:
    """Why ``path``, a file or folder found in the current folder rather than named by the user (``./config``,
    ``./openlineage.yml``), may have been put there by another local user: a symbolic link another user owns, or
    what it leads to owned by another user or writable by its group or others (see :func:`_owner_problem`). None
    where it may be used, or where nothing is there (the caller's own lookup then finds nothing).

    Review R9: in a shared folder (``/tmp``, a project folder others may write) another user planted
    ``config/profiles/local.yaml`` naming their own policies, roles and approval and checkpoint keys, and ``aios
    policy eval`` of a 95,000 EUR invoice run there said ``allow`` instead of ``require_approval``. git refuses a
    repository another user owns for the same reason (``safe.directory``, CVE-2022-24765).
    """
    try:
        link = os.lstat(path)
        if stat.S_ISLNK(link.st_mode) and link.st_uid not in (os.geteuid(), 0):
            owners = f"this process's user (uid {os.geteuid()}) or root"
            return f"{path} is a symbolic link owned by uid {link.st_uid}, not by {owners}"
        return _owner_problem(path, os.stat(path))
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"{path} cannot be examined ({e.strerror or e})"


class UntrustedFile(ConfigError):
    """A file found in the current folder that :func:`read_local_text` refuses; ``problem`` says why."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def read_local_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``, a file found in the current folder, once the file opened (not the name, which
    another user able to write the folder could swap after a check) is a regular file this process's user or root
    owns and no one else may write (:class:`UntrustedFile` otherwise); a ConfigError naming ``what`` where it cannot
    be read or is not UTF-8 text."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)  # a planted pipe must not block the read
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        problem = _owner_problem(path, st) if stat.S_ISREG(st.st_mode) else f"{path} is not a regular file"
        if problem is not None:
            raise UntrustedFile(problem)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        msg = f"{what} {path} is not UTF-8 text (byte {e.start} cannot be read): save it as UTF-8"
        raise ConfigError(msg) from None


def read_local_yaml(path: Path, what: str) -> Any:
    """The YAML document of ``path`` (None for an empty file), a file found in the current folder: as
    :func:`read_local_text`, and a ConfigError naming ``what`` and the file where it is not YAML (as
    :func:`.text_files.read_yaml` says it)."""
    import yaml

    text = read_local_text(path, what)
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{what} {path} nests its values too deeply to read: fix the file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {e}") from None


def _user_name() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _local_refused(local: Path, problem: str) -> ConfigError:
    msg = (
        f"refusing the config folder {local} of the current folder: {problem}, so another local user may have put "
        "profiles, policies, roles and keys of their own there; nothing was read from it. Set AIOS_CONFIG_DIR to the "
        "config folder you mean, or run from another folder; if this one is yours, make it yours alone "
        f"(chown -R {_user_name()} {local} && chmod -R go-w {local})"
    )
    return ConfigError(msg)


def _read_profile(config_dir: Path, profile: str, local: Path | None = None) -> dict[str, Any]:
    """The profile file's settings. ``local``: the ``./config`` of the current folder that ``config_dir`` is, read
    only once it, its profiles/ and the file pass :func:`local_path_problem` (:func:`read_local_text` for the file)."""
    path = config_dir / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        msg = (
            f"profile {profile!r} not found: expected {path}. "
            "Set AIOS_PROFILE to 'local' or 'cluster', or AIOS_CONFIG_DIR"
        )
        raise ConfigError(msg)
    from flytekitplugins.aios_core.text_files import read_yaml

    if local is None:
        data = read_yaml(path, "profile file") or {}
    else:
        for where in (local, local / "profiles"):
            if (problem := local_path_problem(where)) is not None:
                raise _local_refused(local, problem)
        try:
            data = read_local_yaml(path, "profile file") or {}
        except UntrustedFile as e:
            raise _local_refused(local, e.problem) from None
    if not isinstance(data, dict):
        msg = f"profile file {path} must hold a mapping of settings, got {type(data).__name__}"
        raise ConfigError(msg)
    return data


def _expand(values: dict[str, Any]) -> dict[str, Any]:
    config_dir = Path(values["config_dir"])
    state_dir = Path(str(values.get("state_dir", ".aios")).replace("{config_dir}", str(config_dir)))
    from flytekitplugins.aios_audit.private_files import resolve_owned

    state_dir = resolve_owned(state_dir.expanduser())  # a link another user made there is refused, not followed
    out: dict[str, Any] = {}

    def sub(val: Any) -> Any:
        if isinstance(val, str | Path):
            return str(val).replace("{state_dir}", str(state_dir)).replace("{config_dir}", str(config_dir))
        if isinstance(val, dict) and "key" in val:  # a trusted key entry with not_after
            return {**val, "key": sub(val["key"])}
        return val

    for key, val in values.items():
        out[key] = (
            [sub(v) for v in val] if key == "trusted_checkpoint_keys" and isinstance(val, list | tuple) else sub(val)
        )
    out["state_dir"] = state_dir
    for key in ("policy_dir", "roles_file", "models_file", "reports_dir"):
        if key in out:
            out[key] = Path(out[key]).expanduser().resolve()
    return out


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build settings from defaults, profile file, environment and ``overrides`` (highest)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    env = {field: os.environ[var] for var, field in ENV_VARS.items() if os.environ.get(var)}
    config_dir, local = (Path(overrides["config_dir"]), None) if overrides.get("config_dir") else _config_dir()
    profile = str(overrides.get("profile") or env.get("profile") or "local")
    values: dict[str, Any] = {"config_dir": config_dir, "profile": profile}
    file_values = _read_profile(config_dir, profile, local)
    file_values.pop("profile", None)
    values.update(file_values)
    values.update(env)
    values.update(overrides)
    values["profile"] = profile
    defaults = {k: f.default for k, f in Settings.model_fields.items() if k not in values and f.default is not None}
    profile_file = f"profile {config_dir / 'profiles' / f'{profile}.yaml'}"
    field_vars = {field: var for var, field in ENV_VARS.items()}
    sources = {k: "default" for k in defaults}
    sources.update({k: profile_file for k in file_values})
    sources.update({k: f"env {field_vars[k]}" for k in env})
    sources.update({k: "flag" for k in overrides})
    sources["config_dir"] = (
        "flag"
        if "config_dir" in overrides
        else "env AIOS_CONFIG_DIR"
        if os.environ.get("AIOS_CONFIG_DIR")
        else "default"
    )
    sources["profile"] = "flag" if "profile" in overrides else sources.get("profile", "default")
    try:
        settings = Settings(**_expand({**defaults, **values}))
    except ValidationError as e:
        raise ConfigError(_invalid(e, sources, profile)) from e
    settings._sources.update({k: sources.get(k, "default") for k in Settings.model_fields})
    _remember_secrets(settings)
    return settings


def _invalid(error: ValidationError, sources: dict[str, str], profile: str) -> str:
    """One line naming each bad setting, the value given (secrets in URLs masked) and where it came from (the
    variable, the profile file or the flag), with pydantic's reason: what to fix, and where."""
    from flytekitplugins.aios_core.redact import mask_text

    parts = []
    for err in error.errors(include_url=False):
        field = str(err["loc"][0]) if err["loc"] else "?"
        where = sources.get(field, "default")
        given = f" = {mask_text(repr(err['input']))}" if err.get("type") != "missing" else ""
        parts.append(f"{field}{given} (from {where}): {err['msg']}")
    return f"invalid settings for profile {profile!r}: {'; '.join(parts)}. Fix the value where it came from"


def _remember_secrets(settings: Settings) -> None:
    """Have every message of this process mask the credentials of the configured URLs (redact.remember)."""
    from flytekitplugins.aios_core.redact import mask_logs, remember, remember_telemetry

    mask_logs()
    remember_telemetry(os.environ)  # exporters and transports log their URLs and endpoints
    urls = [settings.audit_store, settings.lineage_url, settings.system_of_record_url, settings.document_sources]
    urls += [root.strip() for root in settings.document_sources.split(",")]  # database URLs among folders
    # a served system-of-record task's env:AIOS_SYSTEM_OF_RECORD_URL_<NAME> (connector service only)
    urls += [v for k, v in os.environ.items() if k.startswith("AIOS_SYSTEM_OF_RECORD_URL_")]
    for value in urls:
        if value:
            remember(os.environ.get(value.removeprefix("env:"), "") if value.startswith("env:") else value)


def get_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Cached :func:`load_settings`; the cache key includes every ``AIOS_*`` variable and the cwd."""
    key = (*((k, os.environ.get(k, "")) for k in _KEY_VARS), ("__cwd__", os.getcwd()))
    if overrides:
        return load_settings(overrides)
    with _lock:
        if key not in _cached:
            _cached[key] = load_settings()
        return _cached[key]


def reset_settings() -> None:
    """Forget cached settings (tests, or after changing the environment)."""
    with _lock:
        _cached.clear()
