"""Redaction of secrets people paste into a help desk chat.

Employees paste passwords, tokens and keys while asking for help. Whatever is stored
(tickets, transcripts, audit details) goes through ``redact_secrets`` first, so a secret
never lands in the database, the triage channel or a backup.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# Token shapes that are secret wherever they appear, whatever surrounds them.
_PRIVATE_KEY_BLOCK = re.compile(
    # An unterminated block (a paste cut short) is redacted to the end of the text.
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_SLACK_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}|\bxapp-\d-[A-Za-z0-9-]{8,}")
_GITHUB_TOKEN = re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}")
_AWS_ACCESS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
# "Bearer <token>": the token must be long and contain a digit, so prose such as
# "the bearer of bad news" is left alone.
_BEARER_TOKEN = re.compile(
    r"(?P<keep>\bbearer\s+)(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*", re.IGNORECASE
)
# https://user:secret@host: keep the user, drop the secret.
_URL_CREDENTIALS = re.compile(
    r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)", re.IGNORECASE
)

_VALUE = r"""(?:"[^"\n]*"|'[^'\n]*'|\S+)"""
_PASSWORD_WORD = r"\b(?:password|passwd|passphrase|passcode|pwd|pw)\b"

# "password: X", "pw=X", "api key: X": an explicit separator always introduces a value.
_KEYWORD_WITH_SEPARATOR = re.compile(
    rf"(?P<keep>(?:{_PASSWORD_WORD}|\b(?:api[_ -]?key|access[_ -]?key|client[_ -]?secret"
    rf"|secret|token)\b)\s*[:=]\s*){_VALUE}",
    re.IGNORECASE,
)
# "password is X" and "passcode X" are also how people describe their problem ("my
# password is expired", "password reset"), so these are only redacted when the value does
# not read as an ordinary word describing the problem.
_PASSWORD_IS = re.compile(rf"(?P<keep>{_PASSWORD_WORD}\s+is\s+)(?P<value>{_VALUE})", re.IGNORECASE)
# With nothing but a space between them, a value needs a digit to count as a secret:
# "passcode 482913" is one, "password manager" is not.
_PASSWORD_SPACE = re.compile(
    rf"(?P<keep>{_PASSWORD_WORD}\s+)(?=\S*\d)(?P<value>{_VALUE})", re.IGNORECASE
)

# Words that follow "password is" when someone describes a problem rather than a secret.
# fmt: off
_PROBLEM_WORDS = frozenset(
    {
        "a", "about", "accepted", "all", "also", "always", "an", "and", "any", "at", "being",
        "blank", "blocked", "broken", "but", "case", "case-sensitive", "changed", "correct",
        "definitely", "different", "disabled", "due", "empty", "expired", "expiring", "fine",
        "for", "forgotten", "gone", "going", "in", "incorrect", "invalid", "it", "just", "locked",
        "long", "lost", "missing", "my", "never", "new", "no", "not", "now", "of", "ok", "okay",
        "old", "on", "or", "over", "rejected", "required", "reset", "right", "same", "saved",
        "sent", "set", "short", "still", "stored", "supposed", "that", "the", "this", "to", "too",
        "valid", "weak", "working", "wrong",
    }
)
# fmt: on


# A literal every pattern above needs somewhere in its match: text without any of them holds
# no secret, and most text people write has none, so it skips the nine substitutions.
_MAY_HOLD_A_SECRET = re.compile(
    r"BEGIN|eyJ|xox|xapp-|gh[pousr]_|github_pat_|AKIA|ASIA|bearer|://|pass|pw|key|secret|token",
    re.IGNORECASE,
)


def redact_secrets(text: str) -> str:
    """Return ``text`` with pasted secrets replaced by ``[redacted]``.

    Key words stay ("password: [redacted]") so the agent still understands what the
    requester was saying. Redacting twice gives the same text as redacting once.
    """
    if _MAY_HOLD_A_SECRET.search(text) is None:
        return text
    text = _PRIVATE_KEY_BLOCK.sub(REDACTED, text)
    for token_shape in (_JWT, _SLACK_TOKEN, _GITHUB_TOKEN, _AWS_ACCESS_KEY):
        text = token_shape.sub(REDACTED, text)
    text = _BEARER_TOKEN.sub(rf"\g<keep>{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(rf"\g<keep>{REDACTED}", text)
    text = _KEYWORD_WITH_SEPARATOR.sub(rf"\g<keep>{REDACTED}", text)
    text = _PASSWORD_IS.sub(_redact_unless_problem_word, text)
    text = _PASSWORD_SPACE.sub(rf"\g<keep>{REDACTED}", text)
    return text


def _redact_unless_problem_word(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.strip(".,;:!?").lower() in _PROBLEM_WORDS:
        return match.group(0)
    return match.group("keep") + REDACTED


# What each redaction looked like, in words a requester understands, for the rotate notice.
_SECRET_NAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_PRIVATE_KEY_BLOCK, "a private key"),
    (_JWT, "a signed token (JWT)"),
    (_SLACK_TOKEN, "a Slack token"),
    (_GITHUB_TOKEN, "a GitHub token"),
    (_AWS_ACCESS_KEY, "an AWS access key"),
    (_BEARER_TOKEN, "a bearer token"),
    (_URL_CREDENTIALS, "a password inside a link"),
    (_KEYWORD_WITH_SEPARATOR, "a password or API key"),
)


def secrets_found(text: str) -> list[str]:
    """What kinds of secret ``text`` contains (empty if none), e.g. ["a GitHub token"].

    Whatever ``redact_secrets`` would change counts: if nothing more specific matches,
    the secret is reported as "a password".
    """
    if redact_secrets(text) == text:
        return []
    found = [name for pattern, name in _SECRET_NAMES if pattern.search(text)]
    return list(dict.fromkeys(found)) or ["a password"]


def rotate_notice(kinds: list[str]) -> str:
    """The message telling a requester their pasted secret was removed and must be changed."""
    what = kinds[0] if len(kinds) == 1 else ", ".join(kinds[:-1]) + " and " + kinds[-1]
    return (
        f"You pasted what looks like {what}. tier0 removed it before storing or passing on "
        "your message, but it has left your hands: please change (rotate) it now."
    )
