"""Flyte tasks of the flyte-aios project (registered with `pyflyte package/register` from the repo root)."""
