"""Parsing messages through a running Rasa server (`TIER0_NLU_BACKEND=rasa`).

A help desk that already runs Rasa can keep its trained model: tier0 sends each message to
the server's `/model/parse` and reads the intent from the answer. tier0 still embeds the
message itself (the same vector searches the knowledge base) and keeps its built-in model
ready: when the Rasa server is down, slow or answers nonsense, the message is understood
by the built-in model instead and the outage is logged — a user never waits on Rasa for
more than the timeout, and never gets an error because of it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from nlu.classifier import FALLBACK_INTENT, IntentPrediction, RankedIntent
from nlu.entities import Entity
from nlu.understanding import Interpreter, Understanding, find_ticket_numbers

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 2.0
PARSE_PATH = "/model/parse"
# The largest answer read from Rasa; a real one is a few kilobytes.
MAX_RESPONSE_BYTES = 1_000_000

# Intents of Rasa's helpdesk-assistant (and similar Rasa help-desk bots) that mean what a
# tier0 intent means, so a model trained on that data drives tier0's decisions. Intents
# not listed keep their name.
RASA_INTENT_ALIASES: Mapping[str, str] = {
    "thank": "thanks",
    "open_incident": "open_ticket",
    "incident_status": "ticket_status",
    "human_handoff": "talk_to_human",
    "out_of_scope": FALLBACK_INTENT,
    "password_reset": "ask_question",
    "problem_email": "ask_question",
    "help": "ask_question",
}
# Entities that carry a ticket number, whatever a Rasa project calls them.
TICKET_ENTITIES = frozenset({"ticket_number", "ticket", "incident_number", "incident"})


class RasaUnavailable(Exception):
    """The Rasa server could not give a usable parse; the message says why."""


@dataclass(frozen=True)
class RasaEntity:
    entity: str
    value: str
    start: int | None
    end: int | None
    extractor: str
    confidence: float | None = None


@dataclass(frozen=True)
class RasaParse:
    """Rasa's `/model/parse` answer, with intents already in tier0's names."""

    text: str
    intent: IntentPrediction
    entities: tuple[RasaEntity, ...]


def _confidence(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RasaUnavailable(f"{where}: confidence {value!r} is not a number")
    return min(max(float(value), 0.0), 1.0)


def parse_response(payload: Any, aliases: Mapping[str, str] = RASA_INTENT_ALIASES) -> RasaParse:
    """Read a `/model/parse` answer; RasaUnavailable if it does not have Rasa's shape."""
    if not isinstance(payload, dict):
        raise RasaUnavailable("the answer is not a JSON object")
    intent = payload.get("intent")
    if not isinstance(intent, dict) or not isinstance(intent.get("name"), str):
        raise RasaUnavailable("the answer has no `intent` with a `name`")
    name = aliases.get(intent["name"], intent["name"])
    confidence = _confidence(intent.get("confidence"), "intent")

    # One entry per tier0 intent, best first: two Rasa intents may share a tier0 name.
    ranking: dict[str, float] = {}
    raw_ranking = payload.get("intent_ranking") or []
    if not isinstance(raw_ranking, list):
        raise RasaUnavailable("`intent_ranking` is not a list")
    for position, ranked in enumerate(raw_ranking):
        if not isinstance(ranked, dict) or not isinstance(ranked.get("name"), str):
            raise RasaUnavailable(f"intent_ranking[{position}] has no `name`")
        ranked_name = aliases.get(ranked["name"], ranked["name"])
        ranked_confidence = _confidence(ranked.get("confidence"), f"intent_ranking[{position}]")
        ranking[ranked_name] = max(ranking.get(ranked_name, 0.0), ranked_confidence)
    ranking.setdefault(name, confidence)
    ordered = tuple(
        RankedIntent(ranked_name, round(value, 4))
        for ranked_name, value in sorted(ranking.items(), key=lambda item: -item[1])
    )

    entities: list[RasaEntity] = []
    raw_entities = payload.get("entities") or []
    if not isinstance(raw_entities, list):
        raise RasaUnavailable("`entities` is not a list")
    for position, raw in enumerate(raw_entities):
        if not isinstance(raw, dict) or not isinstance(raw.get("entity"), str):
            raise RasaUnavailable(f"entities[{position}] has no `entity`")
        start, end = raw.get("start"), raw.get("end")
        raw_confidence = raw.get("confidence_entity")
        entities.append(
            RasaEntity(
                entity=raw["entity"],
                value=str(raw.get("value", "")),
                start=start if isinstance(start, int) else None,
                end=end if isinstance(end, int) else None,
                extractor=str(raw.get("extractor", "")),
                confidence=(
                    None
                    if raw_confidence is None
                    else _confidence(raw_confidence, f"entities[{position}]")
                ),
            )
        )
    return RasaParse(
        text=str(payload.get("text", "")),
        intent=IntentPrediction(name, round(confidence, 4), ordered),
        entities=tuple(entities),
    )


class RasaClient:
    """A client of one Rasa server's HTTP API."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        token: str | None = None,
        aliases: Mapping[str, str] = RASA_INTENT_ALIASES,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"TIER0_RASA_URL must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._aliases = aliases

    @property
    def parse_url(self) -> str:
        url = self.base_url + PARSE_PATH
        return f"{url}?token={self._token}" if self._token else url

    def parse(self, text: str) -> RasaParse:
        """Rasa's reading of `text`; RasaUnavailable when the server gives none in time."""
        body = json.dumps({"text": text}).encode("utf-8")
        request = urllib.request.Request(
            self.parse_url,
            data=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise RasaUnavailable(f"{self.base_url} answered HTTP {error.code}") from error
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError):
                raise RasaUnavailable(
                    f"{self.base_url} did not answer within {self.timeout:g} s"
                ) from error
            raise RasaUnavailable(f"{self.base_url} is unreachable: {reason}") from error
        except TimeoutError as error:
            raise RasaUnavailable(
                f"{self.base_url} did not answer within {self.timeout:g} s"
            ) from error
        except OSError as error:  # connection reset mid-answer and the like
            raise RasaUnavailable(f"{self.base_url} failed: {error}") from error
        if len(raw) > MAX_RESPONSE_BYTES:
            raise RasaUnavailable(f"{self.base_url} answered more than {MAX_RESPONSE_BYTES} bytes")
        try:
            payload = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RasaUnavailable(f"{self.base_url} answered something that is not JSON") from error
        try:
            return parse_response(payload, self._aliases)
        except RasaUnavailable as error:
            raise RasaUnavailable(f"{self.base_url}: {error}") from error


class RasaInterpreter(Interpreter):
    """The built-in interpreter, with the intent read by a Rasa server when it answers.

    It shares the built-in interpreter's state rather than re-creating it, so it keeps
    working whatever that interpreter is built from; only `understand` differs.
    """

    def __init__(self, builtin: Interpreter, client: RasaClient) -> None:
        # Deliberately no super().__init__: this interpreter *is* `builtin` (same embedder,
        # classifier and synonyms), so its state is taken over as it is.
        vars(self).update(vars(builtin))
        self.rasa = client
        self._lock = threading.Lock()
        self._rasa_down = False
        self.fallbacks = 0  # messages understood by the built-in model because Rasa failed

    def understand(self, text: str) -> Understanding:
        builtin = super().understand(text)
        try:
            parsed = self.rasa.parse(text)
        except RasaUnavailable as error:
            self._note_outage(error)
            return builtin
        self._note_recovery()
        ticket_numbers = list(builtin.ticket_numbers)
        for entity in parsed.entities:
            if entity.entity in TICKET_ENTITIES:
                ticket_numbers += find_ticket_numbers(entity.value) or (
                    find_ticket_numbers(f"T-{entity.value}") if entity.value.isdigit() else ()
                )
        # Rasa's entities come first; tier0's built-in ones add what Rasa does not know
        # (emails, hosts, …) where they do not overlap a span Rasa already named.
        from_rasa = tuple(
            Entity(
                entity=entity.entity,
                value=entity.value,
                start=entity.start if entity.start is not None else -1,
                end=entity.end if entity.end is not None else -1,
                extractor=entity.extractor or "rasa",
            )
            for entity in parsed.entities
        )
        named = [(e.start, e.end) for e in from_rasa if e.start >= 0]
        extra = tuple(
            e
            for e in builtin.entities
            if not any(e.start < end and start < e.end for start, end in named)
        )
        return replace(
            builtin,
            intent=parsed.intent,
            entities=from_rasa + extra,
            ticket_numbers=tuple(dict.fromkeys(ticket_numbers)),
        )

    def _note_outage(self, error: RasaUnavailable) -> None:
        with self._lock:
            self.fallbacks += 1
            first = not self._rasa_down
            self._rasa_down = True
        # Every failed message is logged, the first of an outage as a warning; a server
        # that stays down does not flood the log with warnings.
        if first:
            log.warning("Rasa NLU unavailable, using the built-in model: %s", error)
        else:
            log.info("Rasa NLU still unavailable, using the built-in model: %s", error)

    def _note_recovery(self) -> None:
        with self._lock:
            recovered, self._rasa_down = self._rasa_down, False
        if recovered:
            log.warning("Rasa NLU at %s answers again", self.rasa.base_url)
