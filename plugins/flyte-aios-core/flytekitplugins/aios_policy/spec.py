"""What a gate asks the policy engine: a :class:`Check` (action + how to build resource and context).

A check's resource and context come from the task's typed inputs (and, for a post-condition, its result)
in one of two forms:

* a callable: ``resource=lambda **inputs: {"type": "Document", "id": inputs["doc"].digest}``; a
  post-condition's callables get the result as the keyword ``result``;
* a declarative form that serializes into the task template: ``resource=("Document", "doc_id")`` (type,
  path of the input holding the id) and ``context={"amount": "invoice.amount"}`` (attribute -> path of
  an input field; ``result.accuracy_delta`` reads the result in a post-condition).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

ResourceSpec = Callable[..., Mapping[str, Any]] | tuple[str, str]
ContextSpec = Callable[..., Mapping[str, Any]] | Mapping[str, str] | None


@dataclasses.dataclass(frozen=True)
class Check:
    """One policy question asked by a gate.

    Args:
        action: Cedar action (``act_on_document``, ``promote_model``, ...).
        resource: callable returning ``{"type": ..., "id": ..., <attrs>}``, or ``(type, input path of the id)``.
        context: callable returning the context mapping, or ``{attribute: input path}``; None for no context.
    """

    action: str
    resource: ResourceSpec
    context: ContextSpec = None

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not self.action:
            msg = f"Check(action={self.action!r}) is invalid: name a Cedar action such as 'act_on_document'"
            raise ValueError(msg)
        if not callable(self.resource) and not _is_pair(self.resource):
            msg = f"Check(resource={self.resource!r}) is invalid: pass a callable or a (type, input_path) pair"
            raise ValueError(msg)
        ctx = self.context
        if ctx is not None and not callable(ctx):
            if not isinstance(ctx, Mapping) or not all(isinstance(v, str) and v for v in ctx.values()):
                msg = f"Check(context={ctx!r}) is invalid: pass a callable or a mapping attribute -> input path"
                raise ValueError(msg)

    def build(self, namespace: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(resource, context) for the given inputs (and ``result``); raises on a bad mapping."""
        if callable(self.resource):
            resource = dict(self.resource(**namespace))
        else:
            rtype, path = self.resource
            resource = {"type": rtype, "id": str(resolve_path(namespace, path))}
        if self.context is None:
            context: dict[str, Any] = {}
        elif callable(self.context):
            context = dict(self.context(**namespace))
        else:
            context = {k: resolve_path(namespace, p) for k, p in self.context.items()}
        return resource, context

    def describe(self) -> dict[str, Any]:
        """JSON-safe description for the task template (callables by qualified name)."""
        return {"action": self.action, "resource": _describe(self.resource), "context": _describe(self.context)}


def _is_pair(v: Any) -> bool:
    return isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, str) and x for x in v)


def _describe(spec: Any) -> Any:
    if spec is None:
        return None
    if callable(spec):
        return f"callable:{getattr(spec, '__module__', '?')}.{getattr(spec, '__qualname__', '?')}"
    if isinstance(spec, tuple):
        return {"type": spec[0], "id_from": spec[1]}
    return dict(spec)


def resolve_path(namespace: Mapping[str, Any], path: str) -> Any:
    """Value at ``input.field.subfield`` (attributes or mapping keys); KeyError naming the path if absent."""
    head, *rest = path.split(".")
    if head not in namespace:
        msg = f"input {head!r} (from path {path!r}) is not an input of this task; inputs: {sorted(namespace)}"
        raise KeyError(msg)
    value = namespace[head]
    for part in rest:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif hasattr(value, part):
            value = getattr(value, part)
        else:
            msg = f"path {path!r}: {type(value).__name__} has no field {part!r}"
            raise KeyError(msg)
    return value
