"""A real SMTP server on a free local port (aiosmtpd) that keeps what it receives.

Tests send to it with smtplib (tier0's outbound mail) and read back the parsed messages,
so the whole SMTP exchange is exercised. It can also refuse mail for a while (4xx, as a
server under maintenance does) or for good (5xx), or keep a mail and answer late (a busy
server whose "250" comes after the client gave up).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MailCollector:
    """The aiosmtpd handler: accepts (or refuses) each mail and keeps the accepted ones."""

    def __init__(self) -> None:
        self.received: list[tuple[Envelope, EmailMessage]] = []
        self.refusal: str | None = None
        self.reply_delay = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refusal is not None:
            return self.refusal
        content = envelope.original_content or b""
        parsed = cast(EmailMessage, message_from_bytes(content, policy=policy.default))
        with self._lock:
            self.received.append((envelope, parsed))
        if self.reply_delay:
            # The mail is kept (accepted) before the answer goes out, late.
            await asyncio.sleep(self.reply_delay)
        return "250 OK"


class LocalSmtpServer:
    def __init__(self) -> None:
        self.collector = MailCollector()
        self.port = free_port()
        self._controller = Controller(self.collector, hostname="127.0.0.1", port=self.port)

    def start(self) -> LocalSmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def refuse(self, reply: str) -> None:
        """Answer every DATA with ``reply`` (e.g. "451 4.3.0 try again later")."""
        self.collector.refusal = reply

    def accept(self) -> None:
        self.collector.refusal = None
        self.collector.reply_delay = 0.0

    def answer_late(self, seconds: float) -> None:
        """Keep each mail, then wait ``seconds`` before answering "250"."""
        self.collector.reply_delay = seconds

    @property
    def messages(self) -> list[EmailMessage]:
        with self.collector._lock:
            return [message for _, message in self.collector.received]

    def envelopes(self) -> list[Any]:
        with self.collector._lock:
            return [envelope for envelope, _ in self.collector.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages
            time.sleep(0.02)
        raise AssertionError(f"expected {count} mail(s), got {len(self.messages)}")
