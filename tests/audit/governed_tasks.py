"""Small governed tasks used by the audit plugin tests (tasks must live in files)."""

from __future__ import annotations

import pandas as pd
from flytekit import task

from flytekitplugins.aios_audit import Audited, ModelRef, audited, current_audit


@task
@audited(subject_input="text")
def tokenize(text: str) -> list[str]:
    """Split text into words.

    Args:
        text: The text.
    """
    scope = current_audit()
    assert scope is not None
    scope.add_policy_decision({"effect": "allow", "policy_ids": ["p1"]})
    scope.set_attribute("api_token", "s3cr3t")
    return text.split()


@task(task_config=Audited(attributes={"stage": "count"}))
def count(words: list[str]) -> int:
    """Count words.

    Args:
        words: The words.
    """
    scope = current_audit()
    assert scope is not None
    scope.add_model(ModelRef(name="counter", version="1", digest="sha256:" + "0" * 64))
    return len(words)


@task
@audited
def boom(x: int) -> int:
    """Always fails.

    Args:
        x: Ignored.
    """
    if x >= 0:
        raise ValueError(f"secret value {x} was bad")
    return x


@task
@audited
def frame_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Describe a data frame.

    Args:
        df: Input frame.
    """
    return df.describe()
