"""Reading Rasa's NLU training data (YAML, `version: "3.1"`): intents, entities, synonyms,
regexes and lookup tables, from one file, several files or a folder.

Every problem is reported as `file:line: what is wrong`, and nothing is skipped silently:
keys that belong to other parts of a Rasa project (`responses`, `stories`, `rules`, the
domain, the pipeline config) are ignored with a note the caller can show.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

BUNDLED_NLU_DATA = Path(__file__).resolve().parent / "data" / "nlu.yml"

# Keys of a Rasa project's other files: a folder of training data often holds them too.
_RASA_KEYS_IGNORED = {
    "responses", "stories", "rules", "e2e_actions",  # training data that is not NLU
    "intents", "entities", "slots", "actions", "forms", "session_config",  # the domain
    "language", "pipeline", "policies", "recipe", "assistant_id",  # config.yml
}  # fmt: skip
_ITEM_KINDS = ("intent", "synonym", "regex", "lookup")
_ITEM_KEYS = {*_ITEM_KINDS, "examples", "metadata"}
_ANNOTATION_KEYS = {"entity", "value", "role", "group"}
_ENTITY_NAME = re.compile(r"^[^\s:()\[\]{}]+$")


class NluDataError(ValueError):
    """Training data that cannot be used; the message names the file, the line and the fault."""


@dataclass(frozen=True)
class EntityAnnotation:
    """An entity marked in an example: `[Outlook](software)` covers `Outlook` in the text."""

    entity: str
    value: str  # the canonical value: the annotated text unless the annotation names one
    start: int
    end: int
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class IntentExample:
    text: str  # without annotation markup
    intent: str
    entities: tuple[EntityAnnotation, ...] = ()


@dataclass
class TrainingData:
    examples: list[IntentExample] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)  # lower-case variant -> canonical
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was read but deliberately not used

    @property
    def intents(self) -> list[str]:
        return sorted({example.intent for example in self.examples})

    @property
    def entity_names(self) -> list[str]:
        return sorted(
            {annotation.entity for example in self.examples for annotation in example.entities}
        )

    def merge(self, other: TrainingData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.update(other.synonyms)
        for name, patterns in other.regexes.items():
            self.regexes.setdefault(name, []).extend(patterns)
        for name, entries in other.lookups.items():
            self.lookups.setdefault(name, []).extend(entries)
        self.notes.extend(other.notes)

    def fingerprint(self) -> str:
        """Changes whenever an example, an annotation, a synonym, a regex or a lookup changes."""
        digest = hashlib.sha256()
        for example in sorted(self.examples, key=lambda e: (e.intent, e.text, e.entities)):
            digest.update(f"{example.intent}\t{example.text}\n".encode())
            for a in example.entities:
                digest.update(f"ent\t{a.entity}\t{a.value}\t{a.start}\t{a.end}\t".encode())
                digest.update(f"{a.role}\t{a.group}\n".encode())
        for variant, canonical in sorted(self.synonyms.items()):
            digest.update(f"syn\t{variant}\t{canonical}\n".encode())
        for name, patterns in sorted(self.regexes.items()):
            digest.update(f"re\t{name}\t{'|'.join(patterns)}\n".encode())
        for name, entries in sorted(self.lookups.items()):
            digest.update(f"lookup\t{name}\t{'|'.join(entries)}\n".encode())
        return digest.hexdigest()[:16]


# -- entity annotations -----------------------------------------------------------------


class AnnotationError(ValueError):
    """A malformed `[text](entity)` markup; the message says where in the example."""


def parse_annotated_example(line: str) -> tuple[str, tuple[EntityAnnotation, ...]]:
    """`reset my [vpn](service) token` -> (`reset my vpn token`, [service 9..12]).

    All three Rasa syntaxes: `[text](entity)`, `[text](entity:value)` and
    `[text]{"entity": ..., "value": ..., "role": ..., "group": ...}` (also a JSON list of
    such objects). A `[` that is never closed, or an annotation whose `(` or `{` is never
    closed, is an error; a closed `[text]` with no annotation after it is plain text.
    """
    plain: list[str] = []
    annotations: list[EntityAnnotation] = []
    length = 0
    position = 0
    while position < len(line):
        opening = line.find("[", position)
        if opening == -1:
            plain.append(line[position:])
            break
        closing = line.find("]", opening + 1)
        if closing == -1:
            raise AnnotationError(
                f"unclosed annotation: the '[' at column {opening + 1} has no ']'"
            )
        inner_opening = line.find("[", opening + 1, closing)
        if inner_opening != -1:  # "[a [b](x)": the first '[' is plain text
            plain.append(line[position:inner_opening])
            length += inner_opening - position
            position = inner_opening
            continue
        marker = line[closing + 1 : closing + 2]
        if marker not in ("(", "{", "["):
            plain.append(line[position : closing + 1])
            length += closing + 1 - position
            position = closing + 1
            continue
        entity_text = line[opening + 1 : closing]
        column = opening + 1
        if not entity_text.strip():
            raise AnnotationError(f"the annotation at column {column} marks no text")
        end_char = {"(": ")", "{": "}", "[": "]"}[marker]
        markup_end = _closing_of(line, closing + 1, end_char)
        if markup_end == -1:
            raise AnnotationError(
                f"unclosed annotation at column {column}: "
                f"the {marker!r} after [{entity_text}] has no {end_char!r}"
            )
        markup = line[closing + 1 : markup_end + 1]
        plain.append(line[position:opening])
        length += opening - position
        start, end = length, length + len(entity_text)
        for spec in _annotation_specs(markup, column):
            annotations.append(
                EntityAnnotation(
                    entity=spec["entity"],
                    value=spec.get("value") or entity_text,
                    start=start,
                    end=end,
                    role=spec.get("role"),
                    group=spec.get("group"),
                )
            )
        plain.append(entity_text)
        length = end
        position = markup_end + 1
    return "".join(plain), tuple(annotations)


def _closing_of(line: str, opening: int, end_char: str) -> int:
    if end_char == ")":
        return line.find(")", opening)
    # JSON may hold the closing character inside a string; take the first one that parses.
    candidate = line.find(end_char, opening)
    while candidate != -1:
        try:
            json.loads(line[opening : candidate + 1])
            return candidate
        except ValueError:
            candidate = line.find(end_char, candidate + 1)
    return line.find(end_char, opening)  # not JSON at all: reported by _annotation_specs


def _annotation_specs(markup: str, column: int) -> list[dict[str, str]]:
    if markup.startswith("("):
        entity, _, value = markup[1:-1].partition(":")
        specs = [{"entity": entity.strip(), "value": value.strip()}]
    else:
        try:
            parsed = json.loads(markup)
        except ValueError as error:
            raise AnnotationError(
                f"the annotation at column {column} is not valid JSON: {markup}"
            ) from error
        specs = parsed if isinstance(parsed, list) else [parsed]
        for spec in specs:
            if not isinstance(spec, dict):
                raise AnnotationError(f"the annotation at column {column} must be a JSON object")
            unknown = set(spec) - _ANNOTATION_KEYS
            if unknown:
                raise AnnotationError(
                    f"the annotation at column {column} has unknown key(s) "
                    f"{', '.join(sorted(unknown))}; expected entity, value, role, group"
                )
            if any(not isinstance(v, str) for v in spec.values()):
                raise AnnotationError(f"the annotation at column {column} must hold strings")
    for spec in specs:
        entity = spec.get("entity", "")
        if not entity or not _ENTITY_NAME.match(entity):
            raise AnnotationError(
                f"the annotation at column {column} needs an entity name, got {entity!r}"
            )
    return specs


def strip_annotations(text: str) -> str:
    """`reset my [vpn](service) token` -> `reset my vpn token`."""
    return parse_annotated_example(text)[0]


# -- the YAML document --------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _pairs(node: MappingNode) -> Iterator[tuple[str, ScalarNode, Node]]:
    for key, value in node.value:
        yield str(key.value), key, value


def _scalar_text(node: Node, source: str, what: str) -> str:
    if not isinstance(node, ScalarNode) or node.tag.endswith(":null"):
        raise NluDataError(f"{source}:{_line(node)}: {what} must be a single name")
    text = str(node.value).strip()
    if not text:
        raise NluDataError(f"{source}:{_line(node)}: {what} is empty")
    return text


def _example_lines(
    node: Node | None, source: str, owner: str, owner_line: int
) -> list[tuple[str, int]]:
    """The `- example` lines of an `examples:` block, each with its line in the file."""
    if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
        raise NluDataError(f"{source}:{owner_line}: {owner} has no examples")
    lines: list[tuple[str, int]] = []
    if isinstance(node, SequenceNode):  # `examples:` as a YAML list of strings or {text: ...}
        for item in node.value:
            text_node = item
            if isinstance(item, MappingNode):
                found = [value for key, _, value in _pairs(item) if key == "text"]
                if not found:
                    raise NluDataError(f"{source}:{_line(item)}: an example needs a `text:`")
                text_node = found[0]
            if not isinstance(text_node, ScalarNode):
                raise NluDataError(f"{source}:{_line(item)}: an example must be text")
            lines.append((str(text_node.value).strip(), _line(text_node)))
        return [(text, line) for text, line in lines if text]
    if not isinstance(node, ScalarNode):
        raise NluDataError(f"{source}:{_line(node)}: `examples` must be a block of `- ` lines")
    # A `|` block starts on the line after the indicator and keeps its line breaks, so the
    # k-th line of the value is that many lines below.
    first = _line(node) + (1 if node.style in ("|", ">") else 0)
    for offset, raw in enumerate(str(node.value).splitlines()):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if not text.startswith("-"):
            raise NluDataError(
                f"{source}:{first + offset}: example line {text!r} of {owner} must start with '- '"
            )
        lines.append((text[1:].strip(), first + offset))
    return [(text, line) for text, line in lines if text]


def _read_item(item: Node, source: str, data: TrainingData) -> None:
    if not isinstance(item, MappingNode):
        raise NluDataError(
            f"{source}:{_line(item)}: expected a mapping such as "
            "`- intent: greet` with `examples: |` (is this an example outside an intent?)"
        )
    fields = {key: (key_node, value) for key, key_node, value in _pairs(item)}
    for key, (key_node, _) in fields.items():
        if key not in _ITEM_KEYS:
            raise NluDataError(
                f"{source}:{_line(key_node)}: unknown key `{key}` in an `nlu:` item; "
                "expected intent, synonym, regex or lookup with examples"
            )
    kinds = [kind for kind in _ITEM_KINDS if kind in fields]
    if len(kinds) != 1:
        what = "none" if not kinds else ", ".join(kinds)
        raise NluDataError(
            f"{source}:{_line(item)}: an `nlu:` item needs exactly one of intent, synonym, "
            f"regex or lookup (found {what}); examples must sit under an intent"
        )
    kind = kinds[0]
    name_node = fields[kind][1]
    name = _scalar_text(name_node, source, f"the {kind} name")
    owner = f"{kind} `{name}`"
    lines = _example_lines(fields.get("examples", (None, None))[1], source, owner, _line(item))
    if kind == "intent":
        for text, line in lines:
            try:
                plain, annotations = parse_annotated_example(text)
            except AnnotationError as error:
                raise NluDataError(f"{source}:{line}: {error} in {text!r}") from error
            plain = plain.strip()
            if not plain:
                raise NluDataError(f"{source}:{line}: an example of {owner} is empty")
            for annotation in annotations:
                surface = plain[annotation.start : annotation.end]
                if annotation.value != surface:  # `[urgent](priority:high)` is a synonym too
                    data.synonyms[surface.lower()] = annotation.value
            data.examples.append(IntentExample(plain, name, annotations))
    elif kind == "synonym":
        for variant, _ in lines:
            data.synonyms[variant.lower()] = name
    elif kind == "regex":
        for pattern, line in lines:
            try:
                re.compile(pattern)
            except re.error as error:
                raise NluDataError(
                    f"{source}:{line}: regex {pattern!r} of {owner} is invalid: {error}"
                ) from error
            data.regexes.setdefault(name, []).append(pattern)
    else:
        data.lookups.setdefault(name, []).extend(entry for entry, _ in lines)


def parse_nlu_yaml(text: str, source: str) -> TrainingData:
    """One Rasa NLU YAML document; `source` names it in error messages."""
    try:
        document = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise NluDataError(f"{source}{line}: not valid YAML: {error.problem}") from error
    except yaml.YAMLError as error:
        raise NluDataError(f"{source}: not valid YAML: {error}") from error
    data = TrainingData()
    if document is None:
        data.notes.append(f"{source}: empty file")
        return data
    if not isinstance(document, MappingNode):
        raise NluDataError(f"{source}:{_line(document)}: expected a mapping with an `nlu:` list")
    for key, key_node, value in _pairs(document):
        if key == "version":
            continue
        if key in _RASA_KEYS_IGNORED:
            data.notes.append(
                f"{source}:{_line(key_node)}: `{key}` ignored: tier0 reads NLU training data only"
            )
            continue
        if key != "nlu":
            raise NluDataError(
                f"{source}:{_line(key_node)}: unknown top-level key `{key}` "
                "(NLU training data has `version` and `nlu`)"
            )
        if isinstance(value, ScalarNode) and value.tag.endswith(":null"):
            continue
        if not isinstance(value, SequenceNode):
            raise NluDataError(f"{source}:{_line(value)}: `nlu:` must be a list of items")
        for item in value.value:
            _read_item(item, source, data)
    return data


def training_files(path: Path) -> list[Path]:
    """A file as given, or every `.yml`/`.yaml` under a folder (hidden ones skipped)."""
    if not path.exists():
        raise NluDataError(f"{path}: cannot be read: no such file or folder")
    if not path.is_dir():
        return [path]
    found = [
        file
        for pattern in ("*.yml", "*.yaml")
        for file in path.rglob(pattern)
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts)
    ]
    return sorted(found)


def load_training_data(paths: Iterable[Path]) -> TrainingData:
    """Merge one or more NLU files (or folders of them) into one training set."""
    paths = list(paths)  # read twice: a generator would leave the error message empty
    merged = TrainingData()
    for path in paths:
        for file in training_files(path):
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise NluDataError(f"{file}: not UTF-8 text ({error.reason})") from error
            except OSError as error:
                raise NluDataError(f"{file}: cannot be read: {error.strerror}") from error
            merged.merge(parse_nlu_yaml(text, str(file)))
    if not merged.examples:
        raise NluDataError("no intent examples found in " + ", ".join(str(p) for p in paths))
    return merged
