"""Config keys in doc text: does a dotted key a page mentions exist in the schema
(scripts/docs_tools.py runs these checks; tests/test_docs.py has their negative controls)."""

from __future__ import annotations

import re
import typing

from docs_config import CODE_SPAN, container_kind, extra_tables, models_in, schema_models

_KEY = re.compile(r"^(model|mesh|problem|network|inputs|residual|boundary|training|energy|"
                  r"parameters|clif|circuit)(\.[A-Za-z_][\w<>|]*)+$")


def _key_exists(parts: list[str], models: list[type]) -> bool:
    """Whether the dotted key `parts` names a field under one of `models`."""
    if not parts:
        return True
    for model in models:
        fields = model.model_fields
        if parts[0] in fields:
            ann = fields[parts[0]].annotation
            sub = models_in(ann)
            if len(parts) == 1:
                return True
            if container_kind(ann) == "dict" and sub:  # [problem.materials.<name>]
                if _key_exists(parts[2:], sub):
                    return True
            elif sub and _key_exists(parts[1:], sub):
                return True
            elif not sub and typing.Any in (typing.get_args(ann) or (ann,)):
                return True  # a free-form table (parameters.ranges.<name>)
            elif not sub and "dict" in str(ann):
                return True
    return False


def key_models() -> list[type]:
    """The top-level models a dotted key may start in: the run models and, as if fields of
    a run, the extra tables."""
    models = list(schema_models().values())
    for key, (model, _) in extra_tables().items():
        models.append(type(f"_{key}", (), {"model_fields": {key: _Field(model)}}))
    return models


def key_exists(key: str) -> bool:
    """Whether a dotted key (``training.lr``, ``problem.materials.<name>.E``) exists."""
    return _key_exists(key.split("."), key_models())


class _Field:
    """A stand-in field whose annotation is a table model (for the extra tables)."""

    def __init__(self, model: type) -> None:
        self.annotation = model


def config_key_problems(text: str, where: str = "text") -> list[str]:
    """Dotted config keys in code spans of `text` (``training.lr``) that the schema lacks."""
    import meshes.registry as registry

    models = key_models()
    mesh_options = {o.name for b in registry.kinds().values() for o in b.options} | {"x0", "x1"}
    problems = []
    for span in set(CODE_SPAN.findall(text)):
        span = span.strip().strip("[]")
        if not _KEY.match(span) or "<" in span:
            continue
        parts = span.split(".")
        if parts[0] == "mesh" and len(parts) == 2 and parts[1] in mesh_options:
            continue
        if not _key_exists(parts, models):
            problems.append(f"{where}: config key `{span}` is not in the schema")
    return problems


def reference_keys(text: str) -> list[str]:
    """The dotted keys in the first column of the config reference's tables."""
    return re.findall(r"^\| `([a-z_]+(?:\.(?:[A-Za-z_]\w*|<\w+>))+)` \|", text, re.M)
