"""A pydantic validation error as one line of English that names the key, the value and what it must be.

Generic over any pydantic model: the stages' config schema uses it, and so can any file a stage reads. A model
may name keys that moved elsewhere in a ``moved`` class variable (key -> where it went), and a field may say in
words what it takes with an ``Expect`` marker where its type and bounds do not say it.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Expect:
    """What a value must be, in words, where the type and bounds do not say it (pydantic ignores this marker)."""

    text: str


def cross_field(message: str) -> PydanticCustomError:
    """A rule between fields failed: ``message`` is the whole line (it names the keys itself)."""
    return PydanticCustomError("cross_field", "{message}", {"message": message})


def _yaml(value: Any) -> str:
    """A choice as it is written on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _bounds(metadata: Sequence[Any]) -> str:
    low = next((m for m in metadata if isinstance(m, Gt | Ge)), None)
    high = next((m for m in metadata if isinstance(m, Lt | Le)), None)
    lo = None if low is None else ("(", low.gt) if isinstance(low, Gt) else ("[", low.ge)
    hi = None if high is None else (")", high.lt) if isinstance(high, Lt) else ("]", high.le)
    if lo and hi:
        return f" in {lo[0]}{lo[1]}, {hi[1]}{hi[0]}"
    if lo:
        return f" {'>' if lo[0] == '(' else '>='} {lo[1]}"
    if hi:
        return f" {'<' if hi[0] == ')' else '<='} {hi[1]}"
    return ""


def _split(annotation: Any, metadata: Sequence[Any] = ()) -> tuple[Any, list[Any]]:
    """The bare type and all its metadata (Annotated nests; a ``Field(ge=...)`` inside Annotated holds its bounds)."""
    meta = list(metadata)
    while get_origin(annotation) is Annotated:
        annotation, *more = get_args(annotation)
        meta += [m for item in more for m in ([item, *item.metadata] if isinstance(item, FieldInfo) else [item])]
    return annotation, meta


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def expected(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """What a value of ``annotation`` must be, in words: "an integer > 0", "null or one of 'cos', 'linear'"."""
    annotation, meta = _split(annotation, metadata)
    said = next((m.text for m in meta if isinstance(m, Expect)), None)
    if said:
        return said
    if _is_union(annotation):
        members = [a for a in get_args(annotation) if a is not type(None)]
        bounds = [m for m in meta if isinstance(m, Gt | Ge | Lt | Le)]  # a field's bounds hold for each member
        words = " or ".join(expected(a, bounds) for a in members)
        return f"null or {words}" if len(members) < len(get_args(annotation)) else words
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        return _yaml(choices[0]) if len(choices) == 1 else f"one of {', '.join(map(_yaml, choices))}"
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + _bounds(meta)
    if annotation is float:
        return "a number" + _bounds(meta)
    if annotation is str:
        return "a non-empty string" if any(isinstance(m, MinLen) and m.min_length > 0 for m in meta) else "a string"
    if get_origin(annotation) is list:
        sizes = {type(m): getattr(m, "min_length", getattr(m, "max_length", None)) for m in meta
                 if isinstance(m, MinLen | MaxLen)}
        size = (f" of {sizes[MinLen]} values" if sizes.get(MinLen) == sizes.get(MaxLen) else
                " (not empty)" if sizes.get(MinLen) else "")
        item = get_args(annotation)[0]
        return f"a list{size}" + ("" if item is Any else f", each {expected(item)}")
    if get_origin(annotation) is dict:
        value = get_args(annotation)[1]
        return "a mapping" + ("" if value is Any else f", each value {expected(value)}")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping of settings"
    return "a valid value"


def _field(model: type[BaseModel], key: Any) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.alias or name, info
    return None


def _tagged(annotation: Any, meta: Sequence[Any], tag: Any) -> Any | None:
    """The member of a discriminated union that ``tag`` picks (a union's tag is one step of an error's loc)."""
    discriminator = next((m.discriminator for m in meta if getattr(m, "discriminator", None) is not None),
                         next((m for m in meta if isinstance(m, Discriminator)), None))
    if discriminator is None:
        return None
    for member in get_args(annotation):
        bare, member_meta = _split(member)
        if any(isinstance(m, Tag) and m.tag == tag for m in member_meta):
            return member
        if isinstance(discriminator, str) and isinstance(bare, type) and issubclass(bare, BaseModel):
            field = bare.model_fields.get(discriminator)
            if field is not None and tag in get_args(field.annotation):
                return member
    return None


@dataclass
class Located:
    """Where an error's loc points: the dotted key, the type expected there, the model holding the key."""

    key: str
    annotation: Any = None
    metadata: Sequence[Any] = ()
    owner: type[BaseModel] | None = None
    owner_key: str = ""
    known: bool = True
    union: tuple[Any, Sequence[Any]] | None = None


def locate(root: type[BaseModel], loc: Sequence[Any]) -> Located:
    """Follow ``loc`` through the schema, dropping union tags from the key."""
    parts: list[str] = []
    annotation, meta = root, []
    owner, owner_key = root, ""
    for step in loc:
        annotation, meta = _split(annotation, meta)
        if _is_union(annotation) and type(None) in get_args(annotation):
            annotation = Union[tuple(a for a in get_args(annotation) if a is not type(None))]  # noqa: UP007
            annotation, meta = _split(annotation, meta)
        if _is_union(annotation):
            member = _tagged(annotation, meta, step)
            if member is not None:
                annotation, meta = member, []
                continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            owner, owner_key = annotation, ".".join(parts)
            found = _field(annotation, step)
            parts.append(str(step))
            if found is None:
                return Located(".".join(parts), owner=owner, owner_key=owner_key, known=False)
            info = found[1]
            annotation, meta = info.annotation, [*info.metadata, *([info] if info.discriminator else [])]
        elif get_origin(annotation) is list and isinstance(step, int):
            parts[-1] += f"[{step}]"
            annotation, meta = get_args(annotation)[0], []
        elif get_origin(annotation) is dict:
            parts.append(str(step))
            annotation, meta = get_args(annotation)[1], []
        else:
            parts.append(str(step))
            annotation, meta = Any, []
    located = Located(".".join(parts), annotation, meta, owner, owner_key)
    bare, bare_meta = _split(annotation, meta)
    if _is_union(bare):
        located.union = (bare, bare_meta)
    return located


def _discriminator(ctx: dict[str, Any]) -> str:
    names = re.findall(r"'([^']*)'", str(ctx.get("discriminator", "")))
    return names[-1] if names else "kind"


def _tags(union: Any, name: str) -> list[Any]:
    """The tags of a union discriminated by the field ``name`` (an alias such as ``_target_``)."""
    tags = []
    for member in get_args(union):
        bare = _split(member)[0]
        found = _field(bare, name) if isinstance(bare, type) and issubclass(bare, BaseModel) else None
        tags += list(get_args(found[1].annotation)) if found else []
    return tags


def explain(error: ValidationError, root: type[BaseModel], stage: str,
            source: Callable[[str], str | None] = lambda key: None) -> str:
    """The first error of ``error`` (validating ``root``) as one line naming the key, the value and what it must be.

    ``source(key)`` may say where an interpolated value came from (e.g. ``${recipe.one_cycle.max_lr}``).
    """
    errors = error.errors(include_url=False)
    kinds = {e["type"] for e in errors}
    # a key missing beside an unknown one is most likely misspelt: name the misspelling
    first = next(e for e in errors if e["type"] == "extra_forbidden") if {"missing", "extra_forbidden"} <= kinds \
        else errors[0]
    kind, value = first["type"], first.get("input")
    if kind == "cross_field":
        return str((first.get("ctx") or {}).get("message", first["msg"]))
    where = locate(root, first["loc"])
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = first.get("ctx") or {}
        name = _discriminator(ctx)
        key = ".".join(filter(None, (where.key, name)))
        choices = ", ".join(_yaml(t) for t in _tags(where.union[0], name)) if where.union else ""
        if kind == "union_tag_not_found":
            return f"{key} is not set: it must be one of {choices}."
        return f"{key}={ctx.get('tag')!r} must be one of {choices}."
    origin = source(where.key)
    shown = f"{where.key}={value!r}" + (f" (from {origin})" if origin else "")
    if kind == "extra_forbidden" or not where.known:
        group = f"{where.owner_key}" if where.owner_key else f"the {stage} config"
        moved = getattr(where.owner, "moved", {}).get(where.key.rsplit(".", 1)[-1])
        names = [info.alias or name for name, info in where.owner.model_fields.items()] if where.owner else []
        close = difflib.get_close_matches(where.key.rsplit(".", 1)[-1], names, n=1, cutoff=0.75)
        return (f"{shown} is not a setting of {group}" + (f": {moved}" if moved else "")
                + (f" (did you mean {close[0]!r}?)" if close and not moved else "")
                + (f" (its settings: {', '.join(names)})." if names else "."))
    if kind == "missing":
        return f"{where.key} is not set: it must be {expected(where.annotation, where.metadata)}."
    return f"{shown} must be {expected(where.annotation, where.metadata)}."
