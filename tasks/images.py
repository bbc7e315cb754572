"""Container images and Flyte secret requests of the pack's tasks.

Images. Two :class:`~flytekit.ImageSpec` definitions with deterministic names (no content hash in the
tag, so a package built anywhere names the same image):

* ``cpu_image``: ``<registry>/flyte-aios:<tag>``, Python 3.11 with the pack installed;
* ``gpu_image``: ``<registry>/flyte-aios-gpu:<tag>``, a CUDA PyTorch base with the pack installed,
  for the training tasks (GPU node pool; see docs/runbook.md).

``AIOS_IMAGE_BUILDER`` decides what ``pyflyte package``/``register`` do with them:

* ``noop`` (default): reference the prebuilt images by name. Nothing is built, checked or pushed, so
  packaging works offline and in CI; images are built once per release (``AIOS_IMAGE_BUILDER=default
  pyflyte build tasks/images.py`` or the project's Dockerfile) and pushed to ``AIOS_IMAGE_REGISTRY``.
* ``default`` (or ``envd``): flytekit builds the image from the spec below during registration
  (needs a Docker engine and push rights; run from the repository root, ``config/`` is copied to
  ``/root/config``); the resulting name is the same.

Settings, read once at import: ``AIOS_IMAGE_REGISTRY`` (default ``ghcr.io/flyte-aios``),
``AIOS_IMAGE_TAG`` (default the pack's version), ``AIOS_GPU_BASE_IMAGE``, ``AIOS_PIP_INDEX``.

Secrets. Flyte ``Secret`` requests are the only way credentials reach a task pod; each is mounted as the
environment variable the cluster profile (config/profiles/cluster.yaml) reads. The values live in the
Kubernetes secret ``aios`` of each project-domain namespace (deploy/secrets.example.yaml), never in
config, images or logs.
"""

from __future__ import annotations

import os
from importlib import metadata

from flytekit import ImageSpec, Secret
from flytekit.deck import DeckField

from flytekitplugins.aios_connectors.constants import (
    AUDIT_STORE_ENV,
    AUDIT_STORE_SECRET_KEY,
    CHECKPOINT_KEY_ENV,
    CHECKPOINT_KEY_SECRET_KEY,
    SECRET_GROUP,
    WEBHOOK_SECRET_ENV,
    WEBHOOK_SECRET_SECRET_KEY,
    WEBHOOK_URL_ENV,
    WEBHOOK_URL_SECRET_KEY,
)


def _version() -> str:
    try:
        return metadata.version("flyte-aios")
    except metadata.PackageNotFoundError:
        return "0.1.0"


IMAGE_REGISTRY = os.environ.get("AIOS_IMAGE_REGISTRY", "ghcr.io/flyte-aios")
IMAGE_TAG = os.environ.get("AIOS_IMAGE_TAG", _version())
IMAGE_BUILDER = os.environ.get("AIOS_IMAGE_BUILDER", "noop")
CPU_BASE_IMAGE = "python:3.11-slim-bookworm"
GPU_BASE_IMAGE = os.environ.get("AIOS_GPU_BASE_IMAGE", "pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime")
PACK_REQUIREMENT = f"flyte-aios=={_version()}"

CPU_IMAGE_NAME = "flyte-aios"
GPU_IMAGE_NAME = "flyte-aios-gpu"
CPU_IMAGE_REF = f"{IMAGE_REGISTRY}/{CPU_IMAGE_NAME}:{IMAGE_TAG}"
GPU_IMAGE_REF = f"{IMAGE_REGISTRY}/{GPU_IMAGE_NAME}:{IMAGE_TAG}"


def _image(name: str, base_image: str, apt: list[str], env: dict[str, str]) -> ImageSpec:
    """The image ``<registry>/<name>:<tag>``, built by flytekit or referenced as prebuilt (``noop``)."""
    if IMAGE_BUILDER == "noop":
        # name/registry/tag_format make image_name() the prebuilt ref; the noop builder returns base_image
        ref = f"{IMAGE_REGISTRY}/{name}:{IMAGE_TAG}"
        return ImageSpec(name=name, registry=IMAGE_REGISTRY, tag_format=IMAGE_TAG, base_image=ref, builder="noop")
    index = os.environ.get("AIOS_PIP_INDEX")
    return ImageSpec(
        name=name,
        registry=IMAGE_REGISTRY,
        tag_format=IMAGE_TAG,
        base_image=base_image,
        python_version="3.11",
        packages=[PACK_REQUIREMENT],
        apt_packages=apt,
        pip_extra_index_url=[index] if index else None,
        env={**env, "AIOS_CONFIG_DIR": "/root/config"},
        copy=["config"],  # policies, roles, expectations, profiles: relative to the repository root
        builder=IMAGE_BUILDER,
    )


cpu_image = _image(
    CPU_IMAGE_NAME,
    CPU_BASE_IMAGE,
    apt=["tesseract-ocr", "tesseract-ocr-eng", "poppler-utils"],
    env={"AIOS_PROFILE": "cluster", "HF_HUB_OFFLINE": "1"},
)
gpu_image = _image(
    GPU_IMAGE_NAME,
    GPU_BASE_IMAGE,
    apt=[],
    env={"AIOS_PROFILE": "cluster", "HF_HUB_OFFLINE": "1", "NCCL_DEBUG": "WARN"},
)

AUDIT_STORE_SECRET = Secret(
    group=SECRET_GROUP, key=AUDIT_STORE_SECRET_KEY, mount_requirement=Secret.MountType.ENV_VAR, env_var=AUDIT_STORE_ENV
)
"""PostgreSQL URL of the audit store (``postgresql://user:pass@host:5432/aios``) as ``AIOS_AUDIT_STORE``."""

CHECKPOINT_KEY_SECRET = Secret(
    group=SECRET_GROUP,
    key=CHECKPOINT_KEY_SECRET_KEY,
    mount_requirement=Secret.MountType.ENV_VAR,
    env_var=CHECKPOINT_KEY_ENV,
)
"""PEM of the Ed25519 checkpoint/approval signing key as ``AIOS_CHECKPOINT_KEY_PEM``."""

WEBHOOK_URL_SECRET = Secret(
    group=SECRET_GROUP, key=WEBHOOK_URL_SECRET_KEY, mount_requirement=Secret.MountType.ENV_VAR, env_var=WEBHOOK_URL_ENV
)
"""Approval webhook URL (may embed a token) as ``AIOS_APPROVAL_WEBHOOK_URL``."""

WEBHOOK_SECRET_SECRET = Secret(
    group=SECRET_GROUP,
    key=WEBHOOK_SECRET_SECRET_KEY,
    mount_requirement=Secret.MountType.ENV_VAR,
    env_var=WEBHOOK_SECRET_ENV,
)
"""HMAC key that signs approval webhooks as ``AIOS_APPROVAL_WEBHOOK_SECRET``."""

GOVERNED_TASK_SECRETS: list[Secret] = [AUDIT_STORE_SECRET, CHECKPOINT_KEY_SECRET]
"""What every governed task requests: ``@task(secret_requests=GOVERNED_TASK_SECRETS, container_image=cpu_image)``."""

CONNECTOR_SECRETS: list[Secret] = [AUDIT_STORE_SECRET, CHECKPOINT_KEY_SECRET, WEBHOOK_URL_SECRET, WEBHOOK_SECRET_SECRET]
"""What the connector deployment mounts (as plain env vars from the same Kubernetes secret; see deploy/)."""

# flytekit's default deck fields include DEPENDENCIES, which runs pip in a subprocess (about 0.5 s per task
# run); the pack's decks show their own content plus these. Ignored by tasks without enable_deck. Not flytekit's
# Input and Output pages: they write str() of each value into the page unescaped, so a launcher's input (a request
# id, a model name in a hand-typed report) ran as script in the Deck an approver opened (review of 2026-12-06). The
# console shows inputs and outputs itself, escaped; the pack's own pages escape every cell.
DECK_FIELDS = (DeckField.SOURCE_CODE, DeckField.TIMELINE)

REPORT_DECK_FIELDS = DECK_FIELDS
"""For a task whose own Deck already renders what it read and wrote (the document batch's summary): flytekit's Input
and Output pages would repeat it as plain ``repr`` text (unescaped), and rendering them took about 0.05 s a run."""

GOVERNED: dict[str, object] = {
    "container_image": cpu_image,
    "secret_requests": GOVERNED_TASK_SECRETS,
    "deck_fields": DECK_FIELDS,
}
"""Keyword arguments every governed task of the project takes: ``@task(**GOVERNED, ...)`` (same for ``@dynamic``).

On a cluster the task then runs in the pack's image with the audit store URL and the signing key mounted from
the ``aios`` secret; locally neither changes anything (local execution ignores images and secret requests).
"""

TRAINING: dict[str, object] = {**GOVERNED, "container_image": gpu_image}
"""The same for the GPU training tasks (CUDA image, GPU node pool)."""
