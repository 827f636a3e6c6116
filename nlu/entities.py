"""Finding the things a help-desk message names: tickets, people's emails, machines, software.

The sources, in order of trust (where two overlap, the earlier one wins):
1. the regexes and lookup tables of the training data (as Rasa's RegexEntityExtractor
   reads them) -- someone wrote them down on purpose;
2. tier0's built-in patterns for what every help desk meets: ticket numbers, emails, IP
   addresses, hostnames -- their shape says what they are;
3. what the examples taught: the CRF tagger (nlu/tagger.py) when the data has enough
   annotated examples, then the values the examples annotate, where it found nothing;
4. the built-in vocabularies of software and device types.
Without a tagger the annotated values are trusted as the data's lookup tables (1). Values
are then written the canonical way: a known spelling as its vocabulary writes it, then
through the synonyms, as Rasa's EntitySynonymMapper does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nlu.tagger import CRF_EXTRACTOR, EntityTagger
from nlu.training_data import TrainingData

DATA_EXTRACTOR = "RegexEntityExtractor"  # Rasa's name for regex and lookup-table extraction
BUILTIN_EXTRACTOR = "tier0.BuiltinEntityExtractor"
SYNONYM_PROCESSOR = "EntitySynonymMapper"

TICKET_NUMBER = re.compile(r"\b[Tt]-?(\d{3,9})\b")
EMAIL = re.compile(r"\b[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}\b")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\w)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
DOTTED_HOSTNAME = re.compile(
    r"(?<![\w@.-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"
)
# Machine names as IT departments write them: letters, then dash-separated parts with a
# digit somewhere (srv-db-01, LAPTOP-7F3K2, prn-3rd-floor-2).
DASHED_HOSTNAME = re.compile(r"(?<![\w.@-])[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+(?![\w-])")
# A dotted word ending in one of these is a file, not a host.
_FILE_EXTENSIONS = frozenset(
    re.findall(
        r"\w+",
        "txt pdf doc docx xls xlsx ppt pptx csv json xml yml yaml log zip tar gz exe msi dmg pkg "
        "png jpg jpeg gif svg mp4 mov py js ts html htm md ini cfg conf bat ps1 sh iso dll",
    )
)

# The software an office meets most; a `software` lookup table in the training data (or
# the service catalog) adds to it. Canonical spelling first, then other ways people write it.
SOFTWARE_CATALOG: dict[str, tuple[str, ...]] = {
    "Outlook": ("outlook", "ms outlook"),
    "Microsoft Teams": ("teams", "ms teams", "microsoft teams"),
    "Microsoft Word": ("ms word", "microsoft word"),
    "Microsoft Excel": ("excel", "ms excel", "microsoft excel"),
    "Microsoft PowerPoint": ("powerpoint", "ms powerpoint", "microsoft powerpoint"),
    "OneDrive": ("onedrive", "one drive"),
    "SharePoint": ("sharepoint", "share point"),
    "Office 365": ("office 365", "o365", "microsoft 365", "m365", "ms office"),
    "Slack": ("slack",),
    "Zoom": ("zoom",),
    "Webex": ("webex",),
    "Google Chrome": ("chrome", "google chrome"),
    "Firefox": ("firefox", "mozilla firefox"),
    "Microsoft Edge": ("microsoft edge", "edge browser"),
    "Adobe Acrobat": ("acrobat", "adobe acrobat", "acrobat reader", "adobe reader"),
    "Photoshop": ("photoshop", "adobe photoshop"),
    "Visual Studio Code": ("vs code", "vscode", "visual studio code"),
    "Visual Studio": ("visual studio",),
    "GlobalProtect": ("globalprotect", "global protect"),
    "Cisco AnyConnect": ("anyconnect", "cisco anyconnect"),
    "Jira": ("jira",),
    "Confluence": ("confluence",),
    "Salesforce": ("salesforce",),
    "SAP": ("sap",),
    "Workday": ("workday",),
    "Okta": ("okta",),
    "Microsoft Authenticator": ("authenticator", "microsoft authenticator"),
    "Dropbox": ("dropbox",),
    "Google Drive": ("google drive",),
    "Gmail": ("gmail",),
    "Git": ("git",),
    "GitHub": ("github",),
    "Docker": ("docker",),
    "Python": ("python",),
    "Tableau": ("tableau",),
    "Power BI": ("power bi", "powerbi"),
    "Citrix": ("citrix",),
    "Windows": ("windows", "windows 10", "windows 11"),
    "macOS": ("macos", "mac os", "os x"),
}

# Device types, canonical name first, then the words people use for them.
DEVICE_TYPES: dict[str, tuple[str, ...]] = {
    "laptop": ("laptop", "notebook", "macbook", "thinkpad", "surface laptop", "chromebook"),
    "desktop": ("desktop", "desktop pc", "workstation", "pc", "imac", "computer tower"),
    "monitor": ("monitor", "second screen", "external monitor", "external display"),
    "phone": ("phone", "mobile", "mobile phone", "cell phone", "smartphone", "iphone",
              "android phone", "desk phone"),
    "tablet": ("tablet", "ipad", "surface pro"),
    "printer": ("printer", "copier", "printer/scanner", "multifunction printer"),
    "scanner": ("scanner",),
    "keyboard": ("keyboard",),
    "mouse": ("mouse", "trackpad", "touchpad"),
    "headset": ("headset", "headphones", "earbuds", "airpods"),
    "webcam": ("webcam", "camera", "web cam"),
    "docking station": ("docking station", "dock", "usb-c dock"),
    "charger": ("charger", "power adapter", "power cable"),
    "router": ("router", "access point", "wifi router"),
    "projector": ("projector", "beamer"),
    "usb stick": ("usb stick", "usb drive", "flash drive", "thumb drive"),
    "yubikey": ("yubikey", "security key", "hardware token"),
}  # fmt: skip


@dataclass(frozen=True)
class Entity:
    """One entity in a message, in the shape of a Rasa `/model/parse` entity."""

    entity: str
    value: str
    start: int
    end: int
    extractor: str
    role: str | None = None
    group: str | None = None
    processors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "extractor": self.extractor,
        }
        if self.role is not None:
            result["role"] = self.role
        if self.group is not None:
            result["group"] = self.group
        if self.processors:
            result["processors"] = list(self.processors)
        return result


class _Vocabulary:
    """Phrases of one entity type, matched whole-word and case-insensitively, longest first."""

    def __init__(self, entity: str, spellings: dict[str, str]) -> None:
        self.entity = entity
        self._canonical = {spelling.lower(): value for spelling, value in spellings.items()}
        ordered = sorted(self._canonical, key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<![\w-])(?:" + "|".join(re.escape(s) for s in ordered) + r")(?![\w-])",
                re.IGNORECASE,
            )
            if ordered
            else None
        )

    def find(self, text: str) -> Iterable[tuple[int, int, str]]:
        if self._pattern is None:
            return
        for match in self._pattern.finditer(text):
            yield match.start(), match.end(), self._canonical[match.group(0).lower()]

    def canonical(self, phrase: str) -> str | None:
        return self._canonical.get(phrase.lower())


def _catalog_spellings(catalog: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {
        spelling: canonical
        for canonical, spellings in catalog.items()
        for spelling in (canonical, *spellings)
    }


class EntityExtractor:
    """All of tier0's entity extraction for one set of training data."""

    def __init__(
        self,
        *,
        regexes: dict[str, list[str]] | None = None,
        lookups: dict[str, list[str]] | None = None,
        synonyms: dict[str, str] | None = None,
        builtins: bool = True,
        tagger: EntityTagger | None = None,
        annotated_values: dict[str, list[str]] | None = None,
    ) -> None:
        """`annotated_values` are the values the examples annotate, per entity: trusted as
        a lookup table without a `tagger`, and filling in where it finds nothing with one."""
        self._regexes = [
            (name, re.compile(pattern, re.IGNORECASE))
            for name, patterns in sorted((regexes or {}).items())
            for pattern in patterns
        ]
        self._tagger = tagger
        if tagger is None:
            lookups = {name: list(entries) for name, entries in (lookups or {}).items()}
            for name, entries in (annotated_values or {}).items():
                lookups[name] = sorted({*lookups.get(name, []), *entries})
            annotated_values = None
        self._lookups = [
            _Vocabulary(name, {entry: entry for entry in entries})
            for name, entries in sorted((lookups or {}).items())
        ]
        self._annotated = [
            _Vocabulary(name, {entry: entry for entry in entries})
            for name, entries in sorted((annotated_values or {}).items())
        ]
        self._synonyms = {variant.lower(): value for variant, value in (synonyms or {}).items()}
        self._builtins = builtins
        software = _catalog_spellings(SOFTWARE_CATALOG)
        for entry in (lookups or {}).get("software", []):
            software.setdefault(entry, entry)
        self._software = _Vocabulary("software", software)
        self._devices = _Vocabulary("device", _catalog_spellings(DEVICE_TYPES))

    @classmethod
    def from_training_data(
        cls,
        data: TrainingData,
        *,
        builtins: bool = True,
        tagger: EntityTagger | None = None,
    ) -> EntityExtractor:
        """The data's regexes and lookup tables, the tagger trained on it if any, and the
        values its examples annotate (an example saying `install [Figma](software)` makes
        "Figma" known software) -- but only a value annotated at least half the times it
        appears in the examples, so a word that is an entity only now and then ("today",
        "me") is not always taken."""
        values: dict[str, list[str]] = {}
        annotated: dict[tuple[str, str], int] = {}
        for example in data.examples:
            for annotation in example.entities:
                surface = example.text[annotation.start : annotation.end].lower()
                key = (annotation.entity, surface)
                annotated[key] = annotated.get(key, 0) + 1
        if annotated:
            appearances: dict[str, int] = {}
            everything = _Vocabulary("any", {surface: surface for _, surface in annotated})
            for example in data.examples:
                for _, _, surface in everything.find(example.text):
                    appearances[surface] = appearances.get(surface, 0) + 1
            for (entity, surface), count in annotated.items():
                if 2 * count >= appearances.get(surface, count):
                    values.setdefault(entity, []).append(surface)
        return cls(
            regexes=data.regexes,
            lookups={name: sorted(set(entries)) for name, entries in data.lookups.items()},
            synonyms=data.synonyms,
            builtins=builtins,
            tagger=tagger,
            annotated_values={name: sorted(set(entries)) for name, entries in values.items()},
        )

    @property
    def tagger(self) -> EntityTagger | None:
        return self._tagger

    def extract(self, text: str) -> tuple[Entity, ...]:
        """Entities in order of position; where two overlap, the more trusted one wins."""
        accepted: list[Entity] = []
        for candidate in self._candidates(text):
            if all(candidate.end <= kept.start or candidate.start >= kept.end for kept in accepted):
                accepted.append(self._canonical(candidate))
        return tuple(sorted(accepted, key=lambda entity: (entity.start, entity.end)))

    def _canonical(self, entity: Entity) -> Entity:
        if entity.extractor == CRF_EXTRACTOR:
            # A tagged phrase a vocabulary knows is written as that vocabulary writes it.
            for vocabulary in (*self._lookups, self._software, self._devices):
                known = vocabulary.canonical(entity.value)
                if vocabulary.entity == entity.entity and known is not None:
                    entity = replace(entity, value=known)
                    break
        ticket = TICKET_NUMBER.fullmatch(entity.value) if entity.entity == "ticket_number" else None
        if ticket is not None:  # t1042, T1042 and T-1042 are one ticket
            entity = replace(entity, value=f"T-{ticket.group(1)}")
        canonical = self._synonyms.get(entity.value.lower())
        if canonical is None or canonical == entity.value:
            return entity
        return replace(entity, value=canonical, processors=(SYNONYM_PROCESSOR,))

    def _candidates(self, text: str) -> Iterable[Entity]:
        # Within one source the longer match comes first, so "Visual Studio Code" beats
        # "Visual Studio".
        data: list[Entity] = []
        for name, pattern in self._regexes:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    data.append(
                        Entity(name, match.group(0), match.start(), match.end(), DATA_EXTRACTOR)
                    )
        for vocabulary in self._lookups:
            for start, end, _ in vocabulary.find(text):
                data.append(Entity(vocabulary.entity, text[start:end], start, end, DATA_EXTRACTOR))
        yield from _longest_first(data)
        if self._tagger is None:
            if self._builtins:
                builtin = self._builtin_patterns(text) + self._builtin_vocabularies(text)
                yield from _longest_first(builtin)
            return
        if self._builtins:
            yield from _longest_first(self._builtin_patterns(text))
        for span in self._tagger.tag(text):
            yield Entity(
                span.entity, text[span.start : span.end], span.start, span.end, CRF_EXTRACTOR
            )
        annotated = [
            Entity(vocabulary.entity, text[start:end], start, end, DATA_EXTRACTOR)
            for vocabulary in self._annotated
            for start, end, _ in vocabulary.find(text)
        ]
        yield from _longest_first(annotated)
        if self._builtins:
            yield from _longest_first(self._builtin_vocabularies(text))

    def _builtin_patterns(self, text: str) -> list[Entity]:
        found: list[Entity] = []

        def add(entity: str, value: str, start: int, end: int) -> None:
            found.append(Entity(entity, value, start, end, BUILTIN_EXTRACTOR))

        for match in TICKET_NUMBER.finditer(text):
            add("ticket_number", f"T-{match.group(1)}", match.start(), match.end())
        for match in EMAIL.finditer(text):
            add("email", match.group(0), match.start(), match.end())
        for pattern in (IPV4, IPV6):
            for match in pattern.finditer(text):
                try:
                    address = ipaddress.ip_address(match.group(0))
                except ValueError:
                    continue
                add("ip_address", str(address), match.start(), match.end())
        for match in DOTTED_HOSTNAME.finditer(text):
            if match.group(0).rsplit(".", 1)[-1].lower() not in _FILE_EXTENSIONS:
                add("hostname", match.group(0).lower(), match.start(), match.end())
        for match in DASHED_HOSTNAME.finditer(text):
            name = match.group(0)
            if any(ch.isdigit() for ch in name) and not TICKET_NUMBER.fullmatch(name):
                add("hostname", name.lower(), match.start(), match.end())
        return found

    def _builtin_vocabularies(self, text: str) -> list[Entity]:
        return [
            Entity(vocabulary.entity, canonical, start, end, BUILTIN_EXTRACTOR)
            for vocabulary in (self._software, self._devices)
            for start, end, canonical in vocabulary.find(text)
        ]


def _longest_first(entities: Sequence[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda e: (-(e.end - e.start), e.start))
