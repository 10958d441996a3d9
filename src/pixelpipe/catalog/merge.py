"""The built-in catalog with the operator's models added (``PIXELPIPE_CATALOG_PATH``).

A model of the operator's file that ``extends`` a built-in model (or has a built-in model's name)
inherits its label, limits and the hosted providers' ids, and overrides what it sets; its
``backends`` are its providers in failover order. A self-hosted backend without an id under
``[models.<name>.ids]`` gets the model's name as its id.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from pixelpipe.catalog.catalog import DEFAULT_POSITION, Catalog, ModelSpec, spec_from_raw
from pixelpipe.catalog.operator_file import ModelEntry, OperatorFile
from pixelpipe.catalog.operator_workflow import inputs_error, limits_error
from pixelpipe.errors import ConfigError
from pixelpipe.workflows import Workflow

_DERIVED = ("name", "providers", "provider_ids", "extra", "workflow")  # not inherited as spec keys


def with_operator_models(catalog: Catalog, operator: OperatorFile) -> Catalog:
    """``catalog`` with the file's models: replaced in place, or added after the built-in ones
    (by their ``position``, then file order)."""
    models = dict(catalog.models)
    added = sorted(
        (m for m in operator.models if m.name not in models),
        key=lambda m: int(m.spec.get("position", DEFAULT_POSITION)),
    )
    for entry in operator.models:
        if entry.name in models:
            models[entry.name] = _model(catalog, entry, operator)
    for entry in added:
        models[entry.name] = _model(catalog, entry, operator)
    return Catalog(models)


def _model(catalog: Catalog, entry: ModelEntry, operator: OperatorFile) -> ModelSpec:
    base = catalog.models.get(entry.extends) if entry.extends else None
    raw: dict[str, Any] = {}
    ids: dict[str, str] = {}
    if base is not None:
        raw = {k: v for k, v in asdict(base).items() if k not in _DERIVED}
        ids = dict(base.provider_ids)
    providers = entry.providers if entry.providers is not None else base.providers if base else ()
    backends = set(operator.backend_names())
    ids.update({p: entry.name for p in providers if p in backends and p not in ids})
    ids.update(entry.ids)
    raw.update(entry.spec)
    raw["providers"] = list(providers)
    raw["provider_ids"] = {p: ids[p] for p in providers}
    try:
        spec = spec_from_raw(entry.name, raw)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(
            f"{entry.source}: model {entry.name}: its limits cannot be read ({exc!r}); write "
            "them as pixelpipe/catalog/models.toml does (e.g. steps = { min = 1, max = 4, "
            "default = 4 })"
        ) from None
    workflow = entry.workflow
    return spec if workflow is None else _with_workflow(spec, entry, workflow)


def _with_workflow(spec: ModelSpec, entry: ModelEntry, workflow: Workflow) -> ModelSpec:
    """The spec of a workflow model, once its limits and its workflow's mapping agree."""
    sizes = len(spec.aspect_ratios) > 1 or spec.custom_size is not None
    takes = {
        "negative_prompt": spec.negative_prompt,
        "steps": spec.steps is not None,
        "guidance": spec.guidance is not None,
        "width": sizes,
        "height": sizes,
        "strength": spec.strength is not None,
    }
    limits_error(entry.source, entry.name, workflow, takes)
    inputs_error(entry.source, entry.name, workflow, spec.max_input_images, spec.accepts_mask)
    # every image slot of the workflow must be filled: a request gives them all
    return replace(spec, workflow=workflow, min_input_images=spec.max_input_images)
