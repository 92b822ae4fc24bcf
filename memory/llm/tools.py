"""The tools of the model providers (Anthropic, OpenAI-compatible): the shape of each answer, and its validation.

Every operation is one request with one tool that the model is forced to call, so the answer arrives as JSON in
the tool's input; that input is then validated against what was asked, because the model may still send wrong
types, labels outside the schema or ids it made up.

Each tool's answer is a pydantic model: its JSON schema (see ToolSchema) is the tool's `input_schema`, and the
same model validates the input that comes back. Tool definitions come before the system prompt in the cache
order, so they hold nothing that varies per call (no id lists): the judge's tool depends only on the label
choices.
"""

from __future__ import annotations

import copy
import functools
import logging
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, ErrorDetails, core_schema

from .base import DistilledPrinciple, Merge, ProviderError, Usage

if TYPE_CHECKING:  # the SDK takes seconds to import: a process that never calls Anthropic does not pay for it
    from anthropic.types import Message, MessageParam, TextBlockParam, ToolChoiceToolParam, ToolParam

log = logging.getLogger(__name__)
JUDGE_TOOL = "record_verdict"
DISTILL_TOOL = "record_principles"
REDERIVE_TOOL = "record_rederivation"
CONSOLIDATE_TOOL = "record_consolidation"
# Output budgets per operation: a verdict is short; a distillation or consolidation may list several principles.
MAX_TOKENS = {JUDGE_TOOL: 1024, DISTILL_TOOL: 4096, REDERIVE_TOOL: 1024, CONSOLIDATE_TOOL: 4096}


class ToolSchema(GenerateJsonSchema):
    """JSON schema as a tool's `input_schema` wants it: self-contained (nested models inlined, no `$ref`), no
    titles or defaults, every property required (a field with a default is only lenient when validating what
    comes back), and labels always an `enum`, even a single one."""

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        result = super().generate(schema, mode)
        defs = result.pop("$defs", {})
        inlined: JsonSchemaValue = _inline(result, defs)
        return inlined

    def field_is_required(self, field: Any, total: bool) -> bool:
        return True

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        result = super().model_schema(schema)
        result.pop("title", None)
        result["additionalProperties"] = False  # what the model may send; replies are read leniently
        return result

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        result = super().literal_schema(schema)
        if "const" in result:
            result["enum"] = [result.pop("const")]
        return result


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Return `node` with every `{"$ref": "#/$defs/X", ...}` replaced by the definition of X (and its siblings)."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _inline({**defs[node["$ref"].rsplit("/", 1)[-1]], **rest}, defs)
    return {key: _inline(value, defs) for key, value in node.items()}


class ToolInput(BaseModel):
    """A tool's input: the declared properties, of exactly the declared types (no coercion: "11" is not an id,
    true is not an integer). The schema sent forbids other properties; one that comes back anyway is ignored,
    as before, rather than failing a verdict that is otherwise sound."""

    model_config = ConfigDict(extra="ignore", strict=True)


M = TypeVar("M", bound=ToolInput)


class RederiveInput(ToolInput):
    action: Literal["keep", "rewrite", "retire"]
    text: str = Field("", description="The rewritten principle if action is rewrite, else empty.")


class MergeInput(ToolInput):
    # At least two ids in the schema; fewer (after unknown ids are dropped) only drops the merge, see parse_merges.
    principle_ids: list[int] = Field(json_schema_extra={"minItems": 2})
    text: str = Field(description="The one principle that replaces them.")


class PairInput(ToolInput):
    first_id: int
    second_id: int


class ConsolidateInput(ToolInput):
    merges: list[MergeInput]
    contradictions: list[PairInput]


REDERIVE_ACTIONS: tuple[str, ...] = get_args(RederiveInput.model_fields["action"].annotation)


@functools.lru_cache(maxsize=256)
def verdict_model(choices: tuple[str, ...]) -> type[ToolInput]:
    """Return the judge tool's input model for these label choices: `value` must be one of them."""
    # The rationale comes first so that the model writes its reasons before it commits to a label.
    labels: Any = Literal[choices]
    return create_model(
        "VerdictInput",
        __base__=ToolInput,
        rationale=(str, Field(description="Why this label, in a few sentences.")),
        value=(labels, Field(description="One of the allowed labels.")),
    )


@functools.lru_cache(maxsize=256)
def principles_model(choices: tuple[str, ...]) -> type[ToolInput]:
    """Return the distillation tool's input model. The schema offers the label choices (or none), but a principle
    with another label is dropped, not refused (see parse_principles), so `label` is validated as a string."""
    principle = create_model(
        "PrincipleInput",
        __base__=ToolInput,
        text=(str, Field(description="The principle, one or two sentences.")),
        label=(
            str,
            Field(
                "",
                description="The label the principle leads to, or empty when it applies whichever label is right. "
                "Cite only feedback whose expert label is this label.",
                json_schema_extra={"enum": ["", *choices]},
            ),
        ),
        source_ids=(
            list[int],
            Field(description="Ids of the feedback examples it was distilled from.", json_schema_extra={"minItems": 1}),
        ),
    )
    return create_model("PrinciplesInput", __base__=ToolInput, principles=(list[principle], ...))


@functools.lru_cache(maxsize=512)
def _input_schema(model: type[ToolInput]) -> dict[str, Any]:
    return model.model_json_schema(schema_generator=ToolSchema)


def _tool(name: str, description: str, model: type[ToolInput]) -> ToolParam:
    return {"name": name, "description": description, "input_schema": copy.deepcopy(_input_schema(model))}


def verdict_tool(choices: list[str]) -> ToolParam:
    return _tool(JUDGE_TOOL, "Record the verdict on the case.", verdict_model(tuple(choices)))


def principles_tool(choices: list[str]) -> ToolParam:
    return _tool(DISTILL_TOOL, "Record the new principles (possibly none).", principles_model(tuple(choices)))


def rederive_tool() -> ToolParam:
    return _tool(REDERIVE_TOOL, "Record what becomes of the principle.", RederiveInput)


def consolidate_tool() -> ToolParam:
    return _tool(
        CONSOLIDATE_TOOL,
        "Record merges of near-duplicates and pairs of contradicting principles.",
        ConsolidateInput,
    )


def request_params(model: str, system: str, user: str, tool: ToolParam) -> dict[str, Any]:
    """Return the Messages API request for one forced tool call, exactly as the provider sends it: the stable
    prefix is the cache breakpoint; everything after it (the user turn) is paid in full."""
    name = tool["name"]
    prefix: TextBlockParam = {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
    message: MessageParam = {"role": "user", "content": user}
    choice: ToolChoiceToolParam = {"type": "tool", "name": name, "disable_parallel_tool_use": True}
    return {
        "model": model,
        "max_tokens": MAX_TOKENS[name],
        "system": [prefix],
        "messages": [message],
        "tools": [tool],
        "tool_choice": choice,
    }


_KINDS = {"string_type": "str", "int_type": "int", "list_type": "list", "bool_type": "bool", "float_type": "float"}
_PLURALS = {"str": "strings", "int": "integers", "list": "lists", "bool": "booleans", "float": "numbers"}


def _path(name: str, loc: tuple[int | str, ...]) -> str:
    """Return where `loc` points in tool `name`'s input, e.g. 'record_principles.principles[0]'."""
    return name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _enum_at(schema: dict[str, Any], loc: tuple[int | str, ...]) -> list[Any]:
    """Return the `enum` of the property `loc` points at in `schema` (properties by name, array items by index)."""
    for part in loc:
        schema = schema.get("items", {}) if isinstance(part, int) else schema.get("properties", {}).get(part, {})
    enum: list[Any] = schema.get("enum", [])
    return enum


def _validation_message(name: str, model: type[ToolInput], error: ErrorDetails) -> str:
    """Return one validation error as '<tool>.<where>: <what>', in the provider's words."""
    loc, kind, value = error["loc"], error["type"], error["input"]
    got = f"got {type(value).__name__} {value!r:.80}"
    where, key = _path(name, loc[:-1]), loc[-1] if loc else ""
    if kind == "missing":
        return f"{where}: missing '{key}'"
    if kind == "extra_forbidden":
        return f"{where}: unexpected property '{key}'"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{_path(name, loc)}: expected an object, {got}"
    if kind == "literal_error":
        allowed = _enum_at(_input_schema(model), loc)
        kinds = {type(choice) for choice in allowed}
        if len(kinds) == 1 and not isinstance(value, tuple(kinds)):  # a list where a label belongs, say
            return f"{where}: '{key}' must be {kinds.pop().__name__}, {got}"
        return f"{where}: {key} {value!r:.80} is not one of {allowed}"
    if kind in _KINDS and isinstance(key, int):  # an item of a list: name the list
        return f"{_path(name, loc[:-2])}: {loc[-2]} must be {_PLURALS[_KINDS[kind]]}, {got}"
    if kind in _KINDS:
        return f"{where}: '{key}' must be {_KINDS[kind]}, {got}"
    return f"{_path(name, loc)}: {error['msg']}"


def validate_input(name: str, model: type[M], data: Any) -> M:
    """Return `data` parsed by `model`, the input model of tool `name`; raise ProviderError on the first error
    (and say how many more there are)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProviderError(_validation_message(name, model, errors[0]) + more) from None


def expect_object(value: Any, where: str) -> dict[str, Any]:
    """Return `value` if it is a JSON object; the error names its type, never quotes the reply."""
    if not isinstance(value, dict):
        raise ProviderError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _known(ids: list[int], known: set[int], where: str) -> list[int]:
    """Return the ids that are in `known`, in order and without duplicates, logging the others (the model
    invented or misread them)."""
    ids = list(dict.fromkeys(ids))
    unknown = [i for i in ids if i not in known]
    if unknown:
        log.info("%s: dropping unknown ids %s", where, unknown)
    return [i for i in ids if i in known]


def parse_verdict(data: dict[str, Any], choices: list[str]) -> tuple[str, str]:
    """Return (value, rationale); raise ProviderError unless value is one of `choices` and rationale a string."""
    verdict: Any = validate_input(JUDGE_TOOL, verdict_model(tuple(choices)), data)
    return verdict.value, verdict.rationale.strip()


def parse_principles(data: dict[str, Any], source_ids: set[int], choices: list[str]) -> list[DistilledPrinciple]:
    """Return the principles that have text, a label of the schema (or none) and cite at least one of
    `source_ids` (other ids are dropped)."""
    parsed: Any = validate_input(DISTILL_TOOL, principles_model(tuple(choices)), data)
    out = []
    for n, item in enumerate(parsed.principles):
        where = f"{DISTILL_TOOL}.principles[{n}]"
        text, label = item.text.strip(), item.label.strip()
        ids = _known(item.source_ids, source_ids, where)
        if label and label not in choices:
            log.info("%s: dropped (label %r is not one of %s)", where, label, choices)
        elif text and ids:
            out.append(DistilledPrinciple(text=text, source_ids=ids, label=label))
        else:
            log.info("%s: dropped (%s)", where, "empty text" if not text else "no valid source id")
    return out


def parse_rederivation(data: dict[str, Any], principle: str) -> str | None:
    """Return the principle's text after the decision: unchanged (keep), the new text (rewrite), None (retire)."""
    decision = validate_input(REDERIVE_TOOL, RederiveInput, data)
    text = decision.text.strip()
    if decision.action == "rewrite" and not text:
        raise ProviderError(f"{REDERIVE_TOOL}: action 'rewrite' with empty text")
    return {"keep": principle, "rewrite": text, "retire": None}[decision.action]


def parse_consolidation(data: dict[str, Any], known: set[int]) -> tuple[list[Merge], list[tuple[int, int]]]:
    """Return (merges, contradictions) among the `known` principle ids."""
    parsed = validate_input(CONSOLIDATE_TOOL, ConsolidateInput, data)
    return parse_merges(parsed.merges, known), parse_contradictions(parsed.contradictions, known)


def parse_merges(items: list[MergeInput], known: set[int]) -> list[Merge]:
    """Return merges of two or more known principles with text; a principle joins at most one merge."""
    merges: list[Merge] = []
    used: set[int] = set()
    for n, item in enumerate(items):
        where = f"{CONSOLIDATE_TOOL}.merges[{n}]"
        text = item.text.strip()
        ids = [i for i in _known(item.principle_ids, known, where) if i not in used]
        if text and len(ids) >= 2:
            merges.append(Merge(principle_ids=ids, text=text))
            used.update(ids)
        else:
            log.info("%s: dropped (%s)", where, "empty text" if not text else "fewer than two valid ids")
    return merges


def parse_contradictions(items: list[PairInput], known: set[int]) -> list[tuple[int, int]]:
    """Return distinct pairs of distinct known ids, each ordered (smaller, larger)."""
    pairs: dict[tuple[int, int], None] = {}
    for n, item in enumerate(items):
        a, b = item.first_id, item.second_id
        if a in known and b in known and a != b:
            pairs[(min(a, b), max(a, b))] = None
        else:
            log.info("%s.contradictions[%s]: dropped pair (%s, %s)", CONSOLIDATE_TOOL, n, a, b)
    return list(pairs)


def tool_input(response: Message, name: str) -> dict[str, Any]:
    """Return the input of the `name` tool call in `response`; raise ProviderError if there is none."""
    if response.stop_reason == "max_tokens":
        raise ProviderError(f"{name}: reply cut off at max_tokens before the tool input was complete")
    from anthropic.types import ToolUseBlock  # imported by now: the response came through the SDK

    calls = [b for b in response.content if isinstance(b, ToolUseBlock)]
    if not calls:
        text = " ".join(getattr(b, "text", "") for b in response.content).strip()
        raise ProviderError(
            f"{name}: expected a tool call, got a text-only reply (stop_reason={response.stop_reason}): {text!r:.200}"
        )
    if calls[0].name != name:
        raise ProviderError(f"{name}: the model called tool {calls[0].name!r} instead")
    return expect_object(calls[0].input, f"{name} input")


def usage_of(response: Message) -> Usage:
    """Return one call's usage from `response.usage` (cache fields may be absent or null)."""
    u = response.usage
    return Usage(
        calls=1,
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_read_tokens=getattr(u, "cache_read_input_tokens", None) or 0,
        cache_creation_tokens=getattr(u, "cache_creation_input_tokens", None) or 0,
    )
