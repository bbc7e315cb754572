"""The private members of flytekit and pandera the pack relies on, in one module per library.

* :mod:`~flytekitplugins.aios.compat.flytekit`: flytekit (and flyteidl) internals.
* :mod:`~flytekitplugins.aios.compat.pandera`: flytekitplugins-pandera's transformer internals, and the
  marker (:class:`~flytekitplugins.aios.compat.pandera.PackDataFrameModel`) that limits the pack's
  pandera transformer to the pack's own schemas.

No other module of the pack touches a private member of these libraries (``tests/compat`` checks it, and
pins the behaviour of each member). When a member is missing, the function raises :class:`CompatError`
naming the installed version, the version it was checked on and the pin that restores it.

Cheap to import: the libraries themselves are imported by the submodules only.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flytekitplugins.aios_core.errors import AiosError


class CompatError(AiosError):
    """A private member of a library the pack relies on is missing or behaves differently (version drift)."""


def installed_version(distribution: str) -> str:
    """The installed version of ``distribution`` (``"not installed"`` when it is absent)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def missing_member(distribution: str, member: str, checked_on: str, relies_on: str) -> CompatError:
    """The error for a private member that is missing from the installed ``distribution``.

    Args:
        distribution: the library's distribution name (``flytekit``, ``flytekitplugins-pandera``).
        member: the private member, qualified (``TypeEngine._dict_to_literal_map``).
        checked_on: the version the pack was checked on (the one to pin).
        relies_on: what the pack does with the member.
    """
    return CompatError(
        f"{distribution} {installed_version(distribution)} has no {member}, a private member the pack relies on "
        f"to {relies_on} (checked on {distribution} {checked_on}): install {distribution}=={checked_on}"
    )


__all__ = ["CompatError", "installed_version", "missing_member"]
