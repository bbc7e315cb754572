"""Registering a retrained candidate re-establishes what stands behind it; the champion's loader checks its bytes.

``register_candidate`` is a task anyone with launch rights can start on its own (it runs as the retraining service,
as the ``retrain`` workflow's tasks do). It believed the ``TrainResult`` handed in: the catalog pinned the digest of a
strong head while the copy it stored (and later served as the champion) was a useless one, and the training record
named any drift record as its parent and any text as its trigger. ``start_model`` then loaded the champion's folder
without checking it against the digest the catalog pins.

Real flytekit tasks run locally, the pack's Cedar policy, the audit trail of each test's own state dir.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from flytekit.types.directory import FlyteDirectory

from flytekitplugins.aios_audit import audit_log
from flytekitplugins.aios_catalog import Catalog, catalog
from flytekitplugins.aios_core.errors import GovernanceDenied
from flytekitplugins.aios_core.settings import get_settings, reset_settings
from flytekitplugins.aios_core.types import PolicyDecision
from tasks.ml.classifier import artifact_digest

NAME = "vader-sentiment"
VERSION = "ft-20990101000000-abcdef"
STANDIN = "tests.evaluation.standin_retrain.retrain"
INVENTED = "drift on flights: dep_delay crossed thresholds"
DIGESTS = {"train": "sha256:" + "1" * 64, "test": "sha256:" + "2" * 64, "ref": "sha256:" + "3" * 64}


def _act_as(monkeypatch: pytest.MonkeyPatch, principal: str) -> None:
    monkeypatch.setenv("AIOS_PRINCIPAL", principal)
    reset_settings()


@pytest.fixture(autouse=True)
def as_retraining(monkeypatch: pytest.MonkeyPatch) -> None:
    _act_as(monkeypatch, "service:retraining")


def _artifact(folder: Path, weights: bytes) -> Path:
    """A model folder (manifest + weights); its bytes are what the digests are about."""
    folder.mkdir(parents=True)
    card = {"name": NAME, "version": VERSION, "labels": ["negative", "positive"], "kind": "minilm-head"}
    (folder / "aios_model.json").write_text(json.dumps(card))
    (folder / "head.npz").write_bytes(weights)
    return folder


def _lineage(version: str = VERSION, *, sealed: bool = True) -> Any:
    """A split's lineage, sealed in the trail as ``prepare_data`` seals the split it draws (``sealed``) or not."""
    from tasks.ml import seal_split
    from tasks.training.data import DataLineage

    data = {"train_digest": DIGESTS["train"], "test_digest": DIGESTS["test"], "reference_rows_digest": DIGESTS["ref"]}
    lineage = DataLineage(source="movieReviewSnippets", version=version, **data)
    if sealed:
        held = {"train": DIGESTS["train"], "reference_rows": DIGESTS["ref"], "test": DIGESTS["test"]}
        lineage.sealed_by = seal_split("dataset:vader-movieReviewSnippets", held, {"version": version}, get_settings())
    return lineage


def _register(
    folder: Path,
    digest: str,
    *,
    version: str = VERSION,
    trigger: str = "on demand",
    drift: str = "",
    lineage: Any = None,
    trained: bool = True,
) -> Any:
    """``register_candidate`` of the artifact ``folder`` claimed as ``digest``; with ``trained``, the pack's training
    step's seal of the folder's bytes as trained for ``version`` on the split's training rows is written first, as
    ``train_distributed`` writes it."""
    from tasks.ml import seal_trained
    from tasks.training.config import TrainConfig, TrainResult
    from tasks.training.promotion import register_candidate

    result = TrainResult(model=FlyteDirectory(str(folder)), digest=digest, losses=[0.7, 0.5], steps=2)
    lineage = lineage if lineage is not None else _lineage(version)
    if trained:
        subject = f"{NAME}@{lineage.version}"
        seal_trained(subject, artifact_digest(folder), lineage.train_digest, "", get_settings())
    return register_candidate(
        result=result, lineage=lineage, config=TrainConfig(), name=NAME, owner="team:ml-platform",
        trigger=trigger, drift_record=drift,
    )  # fmt: skip


def _trainings() -> list[Any]:
    return [r for r in audit_log(get_settings()).scan() if r.event.kind == "training"]


def _refused(call: Any, reason_code: str, match: str) -> GovernanceDenied:
    with pytest.raises(GovernanceDenied, match=match) as caught:
        call()
    assert caught.value.reason_code == reason_code, caught.value
    assert "Traceback" not in str(caught.value)
    return caught.value


def test_a_training_result_whose_digest_names_other_bytes_is_refused_and_registers_nothing(
    aios_env: Path, tmp_path: Path
) -> None:
    """A useless head handed in with the digest of a strong head: the catalog pinned the strong digest over the
    useless bytes. The digest registered is the one of the bytes stored, and a result claiming another is refused."""
    useless = _artifact(tmp_path / "useless", b"majority-class baseline")
    strong = _artifact(tmp_path / "strong", b"a strong head")
    _refused(lambda: _register(useless, artifact_digest(strong)), "model_digest_mismatch", "training result claims")
    assert catalog(get_settings()).find(NAME, VERSION) is None
    assert _trainings() == [] and not (aios_env / "models" / NAME / VERSION).exists()

    registered = _register(useless, artifact_digest(useless))  # the honest claim about the same bytes
    entry = catalog(get_settings()).get(NAME, VERSION)
    assert entry.digest == artifact_digest(useless) == artifact_digest(Path(entry.artifact_uri))
    (training,) = _trainings()
    assert training.record_id == registered.training_record and training.event.outputs["model"] == entry.digest


def test_a_folder_already_under_the_version_is_not_registered_as_another_artifact(
    aios_env: Path, tmp_path: Path
) -> None:
    """The stored copy is never replaced: bytes already under models/<name>/<version> are what the entry would point
    to, so an honest result about other bytes is refused rather than pinned over them."""
    planted = aios_env / "models" / NAME / VERSION
    _artifact(planted, b"majority-class baseline")
    strong = _artifact(tmp_path / "strong", b"a strong head")
    _refused(lambda: _register(strong, artifact_digest(strong)), "model_digest_mismatch", "already holds other bytes")
    assert catalog(get_settings()).find(NAME, VERSION) is None and _trainings() == []


def test_a_link_planted_in_a_model_slot_is_refused_and_registers_nothing(aios_env: Path, tmp_path: Path) -> None:
    """Review of 2026-12-06 (R3): a symbolic link planted at ``models/<name>/<version>`` was followed. A dangling one
    failed the registration with a bare ``FileExistsError``; one to a folder outside the state folder holding the
    trained bytes was registered, and the catalog's entry then named bytes anyone able to write there could change.
    A slot that is a link, or lies under one, is now ``model_slot_taken``; nothing is copied or recorded."""
    art = _artifact(tmp_path / "head", b"the trained head")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copytree(art, outside / "artifact")
    models = aios_env / "models"
    (models / NAME).mkdir(parents=True)
    slot = models / NAME / VERSION
    for target in (tmp_path / "nowhere", outside / "artifact"):
        os.symlink(target, slot)
        _refused(lambda: _register(art, artifact_digest(art)), "model_slot_taken", "symbolic link or not a folder")
        os.unlink(slot)
    os.rmdir(models / NAME)
    os.symlink(outside, models / NAME)  # the name's folder itself a link: the slot would lie outside too
    (outside / VERSION).mkdir()
    _refused(lambda: _register(art, artifact_digest(art)), "model_slot_taken", "symbolic link or not a folder")
    assert list((outside / VERSION).iterdir()) == [] and _trainings() == []
    assert catalog(get_settings()).find(NAME, VERSION) is None
    os.unlink(models / NAME)
    (models / NAME).mkdir()
    slot.mkdir()  # a real folder whose files are links to the copy outside (re-review of 2026-12-06)
    for f in (outside / "artifact").iterdir():
        os.symlink(f, slot / f.name)
    _refused(lambda: _register(art, artifact_digest(art)), "model_slot_taken", "symbolic link or not a folder")
    assert catalog(get_settings()).find(NAME, VERSION) is None and _trainings() == []
    shutil.rmtree(slot)
    slot.mkdir()  # hard links to the copy outside are regular files (third review of 2026-12-06)
    for f in (outside / "artifact").iterdir():
        os.link(f, slot / f.name)
    _refused(lambda: _register(art, artifact_digest(art)), "model_slot_taken", "symbolic link or not a folder")
    shutil.rmtree(slot)
    registered = _register(art, artifact_digest(art))
    entry = catalog(get_settings()).get(NAME, VERSION)
    assert Path(entry.artifact_uri) == slot and not slot.is_symlink() and registered.training_record


def _decision(monkeypatch: pytest.MonkeyPatch, target: str) -> tuple[str, str, str]:
    """A drift check and the monitoring chain's decision on it for ``target``: (check id, decision id, reason)."""
    from tasks.drift.monitor import decide_retraining
    from tasks.drift.report import DriftReport
    from tests.drift.sealed import sealed_check

    _act_as(monkeypatch, "service:monitoring")
    drifted = {"drifted_features": ["month"], "thresholds": {"psi": 0.03}, "dataset": "flights"}
    check = sealed_check("drift", "dataset:flights", drifted, get_settings())
    report = DriftReport(dataset="flights", n_ref=100, n_cur=100, thresholds={"psi": 0.03}, features=[])
    decision = decide_retraining(report=report.model_copy(update={"audit_record_id": check}), target=target)
    assert decision.trigger, decision.reason
    _act_as(monkeypatch, "service:retraining")
    return check, decision.record_id, decision.reason


def test_a_made_up_or_unrelated_drift_record_is_refused_and_the_trigger_is_the_trails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The training record named any record id as its parent drift decision and any text as its trigger. Only the
    trail's decision to start this retraining workflow counts, and its recorded reason is the trigger."""
    from tasks.drift.monitor import DEFAULT_TARGET

    art = _artifact(tmp_path / "head", b"a head")
    digest = artifact_digest(art)
    check, decided, reason = _decision(monkeypatch, DEFAULT_TARGET)
    _check_other, other_target, _ = _decision(monkeypatch, STANDIN)  # a real decision to start another workflow
    for record in ("made-up-record-id", check, other_target):
        _refused(
            lambda record=record: _register(art, digest, trigger=reason, drift=record),
            "no_evidence",
            f"not a recorded decision to start retraining {DEFAULT_TARGET}",
        )
    _refused(lambda: _register(art, digest, trigger=INVENTED, drift=decided), "trigger_mismatch", "is not the reason")
    assert catalog(get_settings()).find(NAME, VERSION) is None and _trainings() == []

    _register(art, digest, trigger=reason, drift=decided)  # what start_retraining hands the retrain workflow
    _check_again, again, _ = _decision(monkeypatch, DEFAULT_TARGET)  # one decision starts one retraining
    _register(art, digest, version=VERSION + "-2", trigger="on demand", drift=again)  # the default: the trail's
    _register(art, digest, version=VERSION + "-3", trigger=INVENTED, drift="")  # on demand: no parent, marked so
    by_version = {r.event.subject.partition("@")[2]: r.event for r in _trainings()}
    for version, decision in ((VERSION, decided), (VERSION + "-2", again)):
        assert by_version[version].parents[0] == decision and len(by_version[version].parents) == 3  # + split, seal
        assert by_version[version].attributes["trigger"] == reason and "month" in reason
    on_demand = by_version[VERSION + "-3"]
    assert len(on_demand.parents) == 2 and on_demand.attributes["trigger"] == f"on demand: {INVENTED}"
    kinds = [audit_log(get_settings()).get(p).event.kind for p in on_demand.parents]
    assert kinds == ["dataset", "trained"]  # only the split it was drawn from and the training step's seal


def test_only_an_artifact_the_training_step_sealed_is_copied_and_registered(aios_env: Path, tmp_path: Path) -> None:
    """Left open on 2026-12-05: ``register_candidate`` copied any folder it was handed under the state's ``models/``
    and registered it as a candidate whose training record said it was trained on the sealed split (a folder holding
    a planted quality suite came in this way). It now copies and registers only bytes the pack's training step sealed
    (``kind="trained"``) as trained for exactly this version on this split's training rows; anything else is
    ``untrained_artifact``, before a byte is copied."""
    from tasks.ml import seal_trained

    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "nothing.json").write_text('{"name": "nothing", "expectations": []}')
    art = _artifact(tmp_path / "head", b"a head trained elsewhere")
    lineage = _lineage()
    settings = get_settings()
    seal_trained(f"{NAME}@{VERSION}-other", artifact_digest(art), lineage.train_digest, "", settings)  # other version
    seal_trained(f"{NAME}@{VERSION}", artifact_digest(art), DIGESTS["test"], "", settings)  # on the held-out rows
    for folder in (planted, art):
        _refused(
            lambda folder=folder: _register(folder, artifact_digest(folder), lineage=lineage, trained=False),
            "untrained_artifact",
            "no intact seal of the pack's training step",
        )
    assert not (aios_env / "models").exists() and _trainings() == []
    assert catalog(settings).find(NAME, VERSION) is None
    registered = _register(art, artifact_digest(art), lineage=lineage)  # sealed as train_distributed seals it
    assert catalog(settings).get(NAME, VERSION).digest == artifact_digest(art) and registered.training_record


def test_one_drift_decision_starts_one_retraining(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Review of 2026-12-05 (left open then): one ``retrain_triggered`` decision was named by any number of
    retrainings, each training record saying the drift caused it, months later too. The training record now claims
    the decision (``retrain-trigger:<id>``, a row of the claims table in the same transaction): a second retraining
    on it is refused before anything is stored (``trigger_used``), and ``start_retraining`` starts nothing on it. The
    same registration again (a retry after the record was written) still goes through."""
    from flytekitplugins.aios_audit.claims import verify_claims
    from tasks.drift.monitor import DEFAULT_TARGET, start_retraining, trigger_claim

    art = _artifact(tmp_path / "head", b"a head")
    digest = artifact_digest(art)
    _check, decided, reason = _decision(monkeypatch, DEFAULT_TARGET)

    # a retry: the training record was written, then the catalog write failed; the same registration again passes
    failing = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        failing["n"] += 1
        if failing["n"] == 1:
            raise RuntimeError("catalog unreachable (test)")
        return catalog(*args, **kwargs)

    import flytekitplugins.aios_catalog as cat_module

    monkeypatch.setattr(cat_module, "catalog", flaky)
    with pytest.raises(RuntimeError, match="catalog unreachable"):
        _register(art, digest, trigger=reason, drift=decided)
    _register(art, digest, trigger=reason, drift=decided)
    monkeypatch.setattr(cat_module, "catalog", catalog)
    assert failing["n"] == 2  # the task imports the catalog when it runs: the patch reached both calls
    store = audit_log(get_settings())
    holder = store.claim_holders([trigger_claim(decided)])[trigger_claim(decided)]
    assert holder[0] == f"{NAME}@{VERSION}"

    # another retraining on the same decision: refused, nothing stored or recorded for it
    other = _artifact(tmp_path / "other", b"another head")
    _refused(
        lambda: _register(other, artifact_digest(other), version=VERSION + "-2", trigger=reason, drift=decided),
        "trigger_used",
        "already started a retraining",
    )
    assert catalog(get_settings()).find(NAME, VERSION + "-2") is None
    assert not (get_settings().state_dir / "models" / NAME / (VERSION + "-2")).exists()
    assert [r.event.subject for r in _trainings()] == [f"{NAME}@{VERSION}"] * 2
    _refused(
        lambda: start_retraining(target=DEFAULT_TARGET, reason=reason, drift_record=decided),
        "trigger_used",
        "already started a retraining",
    )
    assert verify_claims(store) == []  # the claim is sealed in the training record and its row agrees


def _allow(action: str, actor: str, resource: dict[str, Any], context: dict[str, Any]) -> PolicyDecision:
    """Promotion set-up only (promotion governance is tested elsewhere); this test is about loading."""
    return PolicyDecision(effect="allow", reasons=["test set-up"])


def test_a_champion_artifact_swapped_under_its_catalog_entry_is_refused_at_load(tmp_path: Path) -> None:
    """``start_model`` loaded whatever lay under the champion's artifact_uri: the bytes the retraining starts from and
    compares with were not the ones the catalog pins. It now refuses them."""
    from tasks.training.data import start_model

    art = _artifact(tmp_path / "head", b"the champion's head")
    _register(art, artifact_digest(art))
    Catalog(get_settings(), decide=_allow, check_approval=lambda _id: None).promote(
        NAME, VERSION, actor="service:retraining", evidence={}
    )
    champion = catalog(get_settings()).champion(NAME)
    assert champion is not None and champion.model_id == f"{NAME}@{VERSION}"
    rows = pd.DataFrame({"text": ["a wonderful film", "a dreary slog"], "label": ["positive", "negative"]})
    loaded = start_model(train=rows, name=NAME, seed=0)
    assert artifact_digest(Path(loaded.download())) == champion.digest  # intact: the champion is the start model

    (Path(champion.artifact_uri) / "head.npz").write_bytes(b"majority-class baseline")
    _refused(lambda: start_model(train=rows, name=NAME, seed=0), "model_digest_mismatch", "the catalog pins")


def test_a_data_lineage_typed_by_hand_is_refused_and_the_catalog_pins_the_sealed_split(
    aios_env: Path, tmp_path: Path
) -> None:
    """Review case 3: ``register_candidate`` pinned whatever ``DataLineage`` it was handed as the candidate's training
    data, so a lineage naming the held-out rows as the drift check's reference made a check of the held-out rows
    against themselves the candidate's. It now registers only a split ``prepare_data`` sealed, as sealed."""
    art = _artifact(tmp_path / "head", b"a head")
    digest = artifact_digest(art)
    unsealed = _lineage(sealed=False)
    _refused(lambda: _register(art, digest, lineage=unsealed), "unsealed_training_data", "is not an intact split")
    altered = _lineage()
    altered.reference_rows_digest = DIGESTS["test"]  # the held-out rows as the reference batch
    _refused(
        lambda: _register(art, digest, lineage=altered),
        "unsealed_training_data",
        "differs from split .* in reference_rows",
    )
    other_version = _lineage()
    other_version.version = VERSION + "-other"
    _refused(lambda: _register(art, digest, lineage=other_version), "unsealed_training_data", "in version")
    assert catalog(get_settings()).find(NAME, VERSION) is None and _trainings() == []

    sealed = _lineage()
    registered = _register(art, digest, lineage=sealed)
    entry = catalog(get_settings()).get(NAME, VERSION)
    assert entry.training_data_digests == [DIGESTS["train"], DIGESTS["ref"]]
    (training,) = _trainings()
    assert training.record_id == registered.training_record and training.event.parents[0] == sealed.sealed_by
    assert audit_log(get_settings()).get(training.event.parents[1]).event.kind == "trained"
