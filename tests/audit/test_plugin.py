"""The audit plugin on real flytekit tasks: decorator, task config, failures, privacy, fail-closed writes."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from flytekit.configuration import ImageConfig, SerializationSettings

from flytekitplugins.aios.audited import Audited, AuditedPythonFunctionTask
from flytekitplugins.aios_audit import AuditWriteError, audit_log, current_audit
from flytekitplugins.aios_core.digest import digest_value
from flytekitplugins.aios_core.settings import get_settings
from tests.audit import governed_tasks as gt


def _records() -> list:
    return list(audit_log(get_settings()).scan())


def test_decorator_records_digests_policy_and_redacts_secrets() -> None:
    assert gt.tokenize(text="a b c") == ["a", "b", "c"]
    (rec,) = _records()
    ev = rec.event
    assert ev.kind == "task" and ev.status == "succeeded"
    assert ev.execution is not None and ev.execution.task_name.endswith("governed_tasks.tokenize")
    assert ev.inputs == {"text": digest_value("a b c")}
    assert ev.outputs == {"o0": digest_value(["a", "b", "c"])}
    assert ev.subject == digest_value("a b c")
    assert ev.policy_decisions == [{"effect": "allow", "policy_ids": ["p1"]}]
    assert ev.attributes["api_token"] == "[redacted]"
    assert "s3cr3t" not in rec.model_dump_json()
    assert ev.started_at is not None and ev.ended_at is not None and ev.started_at <= ev.ended_at
    assert current_audit() is None  # the scope does not leak out of the task


def test_scrub_redacts_secret_named_keys_of_any_length_and_case_every_time() -> None:
    """Key names are checked through a bounded cache (keys of up to 64 characters): the same answers for a key seen
    before, a long key past the cache, and any case, at every level."""
    from flytekitplugins.aios_audit.scope import scrub

    long_secret, long_plain = "x" * 70 + "_Private_Key", "y" * 90
    value = {"Api_Key": "k1", "note": "fine", long_secret: "k2", long_plain: 3, "nested": [{"PASSWORD": "k3"}]}
    for _ in range(2):  # the second time from the cache
        assert scrub(value) == {
            "Api_Key": "[redacted]",
            "note": "fine",
            long_secret: "[redacted]",
            long_plain: 3,
            "nested": [{"PASSWORD": "[redacted]"}],
        }


def test_task_config_plugin_records_model_and_serializes() -> None:
    assert gt.count(words=["x", "y"]) == 2
    (rec,) = _records()
    assert rec.event.models[0].name == "counter"
    assert rec.event.attributes == {"stage": "count"}
    assert isinstance(gt.count, AuditedPythonFunctionTask)
    settings = SerializationSettings(image_config=ImageConfig.auto_default_image())
    assert gt.count.get_custom(settings)["aios_audit"]["kind"] == "task"
    assert gt.count.task_type == "python-task"


def test_failure_is_recorded_without_the_message_text() -> None:
    with pytest.raises(Exception, match="secret value 3"):
        gt.boom(x=3)
    (rec,) = _records()
    assert rec.event.status == "failed"
    assert rec.event.attributes["error_type"] == "builtins.ValueError"
    assert "secret value" not in rec.model_dump_json()


def test_digests_are_stable_for_frames_and_across_runs() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 0.25, 0.125]})
    gt.frame_stats(df=df)
    gt.frame_stats(df=df.copy())
    a, b = _records()
    assert a.event.inputs == b.event.inputs and a.event.outputs == b.event.outputs
    gt.frame_stats(df=df.assign(a=[1, 2, 4]))
    assert _records()[2].event.inputs != a.event.inputs


def test_audit_write_failure_fails_the_task(aios_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = aios_env / "not-a-dir"
    blocker.write_text("x")
    monkeypatch.setenv("AIOS_AUDIT_STORE", f"sqlite:///{blocker}/audit.db")
    from flytekitplugins.aios_core.settings import reset_settings

    reset_settings()
    with pytest.raises(Exception) as info:
        gt.tokenize(text="a")
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert any(isinstance(e, AuditWriteError) or "AuditWriteError" in repr(e) for e in chain if e is not None)


def test_workflow_chains_lineage_between_tasks() -> None:
    from flytekit import workflow

    @workflow
    def wf(text: str) -> int:
        return gt.count(words=gt.tokenize(text=text))

    assert wf(text="one two") == 2
    first, second = _records()
    assert first.event.outputs["o0"] == second.event.inputs["words"]
    assert first.event.execution.execution_key == second.event.execution.execution_key  # type: ignore[union-attr]


def test_audited_config_rejects_bad_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        Audited(kind="bad kind!")


@pytest.mark.slow
def test_composes_with_kfpytorch_elastic(aios_env: Path) -> None:
    pytest.importorskip("flytekitplugins.kfpytorch")
    from tests.audit import elastic_task

    os.environ.pop("OMP_NUM_THREADS", None)
    assert elastic_task.ranked(x=3) == 3
    records = _records()
    assert {r.event.attributes.get("rank") for r in records} == {0, 1}
    assert all(r.event.attributes.get("world_size") == 2 for r in records)
