"""``[models.<name>]`` of the operator's catalog file, checked against its backends and the
providers' model ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixelpipe.catalog.operator_spec import InputClaims, ModelEntry
from pixelpipe.catalog.operator_workflow import WORKFLOW_KEYS, WorkflowReader

SPEC_KEYS = (
    "label",
    "description",
    "position",
    "typical_latency_s",
    "formats",
    "default_format",
    "aspect_ratios",
    "custom_size",
    "steps",
    "guidance",
    "qualities",
    "default_quality",
    "negative_prompt",
    "max_n",
    "max_input_images",
    "min_input_images",
    "accepts_mask",
    "strength",
    "input_fidelities",
)
MODEL_KEYS = ("extends", "backends", "ids", *WORKFLOW_KEYS, *SPEC_KEYS)
NEW_MODEL_NEEDS = ("label", "formats", "aspect_ratios")


class ModelReader(WorkflowReader):
    # --- models ---------------------------------------------------------------------------
    def model(
        self,
        name: str,
        raw: Mapping[str, Any],
        backends: Mapping[str, str],
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ModelEntry:
        """The checked entry; ``backends``: the file's backends, name -> kind (``options``: name
        -> the backend's options)."""
        at = self.line_of("models", name)
        self.unknown_keys("models", name, raw, MODEL_KEYS, "the keys of pixelpipe's catalog")
        extends = self.extends(name, raw)
        if extends is None:
            missing = [k for k in NEW_MODEL_NEEDS if k not in raw]
            if missing:
                raise self.fail(
                    at,
                    f"model {name} is new and has no {', '.join(missing)}: give them, or "
                    'extends = "<built-in model>" to inherit its label and limits',
                )
        ids = self.ids(name, raw)
        workflow = self.workflow(name, raw)
        if workflow is not None and "backends" not in raw:
            raise self.fail(
                at,
                f"model {name} runs a workflow: list the backends that run it "
                '(backends = ["<a ComfyUI backend of this file>"])',
            )
        providers = self.providers(name, raw, backends, extends, ids)
        for provider in providers or ():
            kind = backends.get(provider)
            self.check_runner(
                name, provider, kind, workflow is not None, self.line_of("models", name, "backends")
            )
            if kind is not None and workflow is None:  # a workflow maps its own inputs
                backend_options = (options or {}).get(provider, {})
                self.check_inputs(name, raw, extends, provider, kind, backend_options)
        spec = {k: v for k, v in raw.items() if k in SPEC_KEYS}
        return ModelEntry(name, extends, spec, providers, ids, f"{self.path}:{at}", workflow)

    def extends(self, name: str, raw: Mapping[str, Any]) -> str | None:
        if "extends" not in raw:
            return name if name in self.known.models else None  # a built-in model's name: itself
        base = raw["extends"]
        if base not in self.known.models:
            raise self.fail(
                self.line_of("models", name, "extends"),
                f"model {name}: extends = {base!r} is not a built-in model; use one of: "
                f"{', '.join(sorted(self.known.models))}",
            )
        return str(base)

    def ids(self, name: str, raw: Mapping[str, Any]) -> dict[str, str]:
        ids = raw.get("ids", {})
        bad = not isinstance(ids, dict) or any(not isinstance(v, str) for v in ids.values())
        if bad:
            raise self.fail(
                self.line_of("models", name, "ids"),
                f"model {name}: ids must be a table of strings ([models.{name}.ids] "
                'gpu_a = "<the model\'s id on gpu_a>")',
            )
        return dict(ids)

    def providers(
        self,
        name: str,
        raw: Mapping[str, Any],
        backends: Mapping[str, str],
        extends: str | None,
        ids: Mapping[str, str],
    ) -> tuple[str, ...] | None:
        listed = raw.get("backends")
        line = self.line_of("models", name, "backends")
        if listed is None:
            if extends is None:
                raise self.fail(
                    self.line_of("models", name),
                    f'model {name} lists no backends: add backends = ["<backend>", ...] '
                    "(failover order; self-hosted backends and hosted providers)",
                )
            return None
        if (
            not isinstance(listed, list)
            or not listed
            or any(not isinstance(b, str) for b in listed)
        ):
            raise self.fail(
                line, f"model {name}: backends must be a non-empty list of names, in failover order"
            )
        if len(set(listed)) != len(listed):
            raise self.fail(line, f"model {name}: backends lists a name twice")
        for provider in listed:
            self.check_provider(name, provider, backends, extends, ids, line)
        for provider in ids:
            if provider not in listed:
                raise self.fail(
                    self.line_of("models", name, "ids"),
                    f"model {name}: ids names {provider!r}, which its backends do not list",
                )
        return tuple(listed)

    def check_provider(
        self,
        name: str,
        provider: str,
        backends: Mapping[str, str],
        extends: str | None,
        ids: Mapping[str, str],
        line: int,
    ) -> None:
        if provider in backends:
            return
        hosted = self.known.hosted.get(provider)
        if hosted is None:
            known = sorted(backends) + sorted(self.known.hosted)
            raise self.fail(
                line,
                f"model {name}: backends names {provider!r}, which is neither a backend of this "
                f"file nor a provider; use one of: {', '.join(known)}",
            )
        if provider not in ids and (extends is None or extends not in hosted):
            raise self.fail(
                line,
                f"model {name}: {provider} has no id for it ({provider} serves "
                f"{', '.join(sorted(hosted)) or 'no model'}); extend one of those models, or "
                f'give its id under [models.{name}.ids] {provider} = "<its model id>"',
            )

    # --- image inputs ---------------------------------------------------------------------
    def claims(self, raw: Mapping[str, Any], extends: str | None) -> InputClaims:
        """The image inputs the model says it takes: its own keys, else its base model's."""
        models = self.known.models
        base = models.get(extends) if extends and isinstance(models, Mapping) else None
        images = raw.get("max_input_images", getattr(base, "max_input_images", 0))
        mask = raw.get("accepts_mask", getattr(base, "accepts_mask", False))
        strength = raw.get("strength", getattr(base, "strength", None))
        count = images if isinstance(images, int) and not isinstance(images, bool) else 0
        return InputClaims(count, mask is True, strength is not None)

    def check_inputs(
        self,
        name: str,
        raw: Mapping[str, Any],
        extends: str | None,
        provider: str,
        kind: str,
        options: Mapping[str, Any],
    ) -> None:
        """A model with image inputs only on backends whose kind takes them (and as its check
        says: e.g. how many images, which inputs are named)."""
        claims = self.claims(raw, extends)
        if not claims.any():
            return
        check = self.known.input_kinds.get(kind)
        what = ", ".join(
            k
            for k, on in (
                (f"max_input_images = {claims.max_images}", claims.max_images > 0),
                ("accepts_mask = true", claims.mask),
                ("strength", claims.strength),
            )
            if on
        )
        line = self.line_of("models", name, "backends")
        if check is None:
            takers = ", ".join(sorted(self.known.input_kinds)) or "none is installed"
            raise self.fail(
                line,
                f"model {name} takes image inputs ({what}), and backend {provider} is a {kind} "
                "backend, to which pixelpipe sends no input images; set max_input_images = 0 "
                "(text only; a model that extends one with inputs inherits them), or serve it "
                f"from backends of a kind that takes them ({takers})",
            )
        problem = check(options, claims)
        if problem is not None:
            raise self.fail(line, f"model {name} on backend {provider} ({kind}): {problem}")
