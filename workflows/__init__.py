"""Flyte workflows and launch plans of the flyte-aios project (public names: see docs/ops.md)."""
