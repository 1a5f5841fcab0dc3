"""A tiny SMTP server for tests: speaks enough of RFC 5321 for smtplib and keeps what it receives.

Real sockets, a real dialogue (EHLO, MAIL, RCPT, DATA with dot-stuffing, QUIT), no
dependency. ``busy`` first connections are answered 421 (service not available), which
smtplib reports as a 4xx: the sender must retry.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from types import TracebackType


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class SmtpSink:
    busy: int = 0
    """How many connections to refuse with 421 before accepting mail."""
    received: list[Received] = field(default_factory=list)
    connections: int = 0

    def __enter__(self) -> SmtpSink:
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                sink.connections += 1
                if sink.busy > 0:
                    sink.busy -= 1
                    self.reply("421 busy, try again later")
                    return
                self.reply("220 sink ESMTP")
                sender, recipients = "", []
                while line := self.rfile.readline():
                    verb = line.decode().strip().split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 sink")
                    elif verb == "MAIL":
                        sender, recipients = _address(line), []
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        recipients.append(_address(line))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        sink.received.append(Received(sender, recipients, self.data()))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

            def data(self) -> bytes:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return b"".join(lines)

            def reply(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _address(line: bytes) -> str:
    text = line.decode()
    return text[text.index("<") + 1 : text.index(">")] if "<" in text else text.split(":", 1)[1].strip()
