"""Reading intent examples from Rasa's NLU YAML training-data format."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# `[VPN](service)`, `[T-1042](ticket_number)`, `[wifi]{"entity": "network"}`
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<entity>[^)]+)\)|\{(?P<json>[^}]*)\})")
_IGNORED_KEYS = {"responses", "stories", "rules", "version"}
BUNDLED_NLU_DATA = Path(__file__).resolve().parent / "data" / "nlu.yml"


class NluDataError(ValueError):
    """Training data that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class IntentExample:
    text: str
    intent: str


@dataclass
class TrainingData:
    examples: list[IntentExample] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        return sorted({example.intent for example in self.examples})

    def fingerprint(self) -> str:
        """Changes whenever an example, a synonym or a regex changes."""
        digest = hashlib.sha256()
        for example in sorted(self.examples, key=lambda e: (e.intent, e.text)):
            digest.update(f"{example.intent}\t{example.text}\n".encode())
        for variant, canonical in sorted(self.synonyms.items()):
            digest.update(f"syn\t{variant}\t{canonical}\n".encode())
        for name, patterns in sorted(self.regexes.items()):
            digest.update(f"re\t{name}\t{'|'.join(patterns)}\n".encode())
        return digest.hexdigest()[:16]


def strip_annotations(text: str) -> str:
    """`reset my [vpn](service) token` -> `reset my vpn token`."""
    return _ANNOTATION.sub(lambda match: match.group("text"), text)


def _example_lines(block: Any, where: str) -> list[str]:
    if not isinstance(block, str):
        raise NluDataError(f"{where}: `examples` must be a block of `- example` lines")
    lines = []
    for raw in block.splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("- "):
            raise NluDataError(f"{where}: example line {line!r} must start with '- '")
        lines.append(line[2:].strip())
    return lines


def parse_nlu_yaml(text: str, source: str) -> TrainingData:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise NluDataError(f"{source}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise NluDataError(f"{source}: expected a mapping with an `nlu:` list at the top")
    unknown = set(document) - _IGNORED_KEYS - {"nlu"}
    if unknown:
        raise NluDataError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    items = document.get("nlu") or []
    if not isinstance(items, list):
        raise NluDataError(f"{source}: `nlu:` must be a list")

    data = TrainingData()
    for position, item in enumerate(items, start=1):
        where = f"{source}, nlu item {position}"
        if not isinstance(item, dict):
            raise NluDataError(f"{where}: expected a mapping such as `- intent: greet`")
        if "intent" in item:
            intent = str(item["intent"]).strip()
            if not intent:
                raise NluDataError(f"{where}: the intent has no name")
            for line in _example_lines(item.get("examples"), f"{where} ({intent})"):
                example = strip_annotations(line).strip()
                if example:
                    data.examples.append(IntentExample(text=example, intent=intent))
        elif "synonym" in item:
            canonical = str(item["synonym"])
            for variant in _example_lines(item.get("examples"), f"{where} (synonym)"):
                data.synonyms[variant.lower()] = canonical
        elif "regex" in item:
            name = str(item["regex"])
            patterns = _example_lines(item.get("examples"), f"{where} (regex {name})")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise NluDataError(f"{where}: regex {pattern!r} is invalid: {error}") from error
            data.regexes.setdefault(name, []).extend(patterns)
        elif "lookup" in item:
            continue  # lookup tables feed entity extraction, which arrives with the NLU issue
        else:
            raise NluDataError(f"{where}: expected `intent`, `synonym`, `regex` or `lookup`")
    return data


def load_training_data(paths: Iterable[Path]) -> TrainingData:
    """Merge one or more NLU files (or folders of them) into one training set."""
    paths = list(paths)  # read twice: a generator would leave the error message empty
    merged = TrainingData()
    for path in paths:
        files = (
            sorted(path.glob("**/*.yml")) + sorted(path.glob("**/*.yaml"))
            if path.is_dir()
            else [path]
        )
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as error:
                raise NluDataError(f"{file}: cannot be read: {error.strerror}") from error
            part = parse_nlu_yaml(text, str(file))
            merged.examples.extend(part.examples)
            merged.synonyms.update(part.synonyms)
            for name, patterns in part.regexes.items():
                merged.regexes.setdefault(name, []).extend(patterns)
    if not merged.examples:
        raise NluDataError("no intent examples found in " + ", ".join(str(p) for p in paths))
    return merged
