"""Mail: how Watcher's reports reach REPORTMAIL.

Model: a message is an `email.message.EmailMessage` built by the caller;
`send` hands it to MAILHOST, which is either `host[:port]` (`[v6]:port` for
an IPv6 literal; port 25 when none), spoken to over plain SMTP with
smtplib, or `sendmail`, which pipes the message to `sendmail -t -i` (found
on PATH, then in /usr/sbin and /usr/lib, so a crontab's short PATH works).
Every way a mail can fail (no server, refused, a timeout, a rejected
recipient, sendmail missing or exiting non-zero) becomes one `MailError`
line that says why; the caller decides what to keep.
"""
import os
import re
import shutil
import smtplib
import socket
import subprocess
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Mapping, Optional, Tuple

from lib.errors import WatcherError

SENDMAIL_DIRS = ("/usr/sbin", "/usr/lib")


class MailError(WatcherError):
    pass


def sender() -> str:
    return f"Watcher <root@{socket.gethostname()}>"


def new_message(to: str, subject: str, text: str) -> EmailMessage:
    """A plain-text message with the headers every Watcher mail carries."""
    msg = EmailMessage()
    msg["From"] = sender()
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=socket.gethostname() or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    return msg


def split_host(mailhost: str) -> Tuple[str, int]:
    """'host', 'host:port', '[v6]' or '[v6]:port' -> (host, port)."""
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", mailhost)
    if not m:
        raise MailError(f"MAILHOST={mailhost!r} is not host[:port] or sendmail")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4) or 25)
    return host, port


def find_sendmail(environ: Mapping = os.environ) -> Optional[str]:
    path = os.pathsep.join([environ.get("PATH", os.defpath), *SENDMAIL_DIRS])
    return shutil.which("sendmail", path=path)


def send(msg: EmailMessage, mailhost: str, timeout: float = 30.0, environ: Mapping = os.environ) -> str:
    """Deliver `msg`; returns how it went ('via 127.0.0.1:25'); raises MailError."""
    to = msg["To"]
    if mailhost == "sendmail":
        return _sendmail(msg, to, timeout, environ)
    host, port = split_host(mailhost)
    where = f"{host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        raise MailError(f"{where} refused the recipient {to}: {code} {_text(text)}") from None
    except smtplib.SMTPResponseException as e:
        raise MailError(f"{where} answered {e.smtp_code} {_text(e.smtp_error)}") from None
    except smtplib.SMTPException as e:
        raise MailError(f"SMTP with {where} failed: {e}") from None
    except socket.gaierror as e:
        raise MailError(f"MAILHOST {host}: cannot resolve the name ({e.strerror})") from None
    except socket.timeout:
        raise MailError(f"no answer from the SMTP server {where} within {timeout:.0f} s") from None
    except OSError as e:
        raise MailError(f"cannot reach the SMTP server {where}: {e.strerror or e}") from None
    if refused:
        raise MailError(f"{where} refused the recipient {to}: {refused}")
    return f"via SMTP {where}"


def _text(raw) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


def _sendmail(msg: EmailMessage, to: str, timeout: float, environ: Mapping) -> str:
    path = find_sendmail(environ)
    if not path:
        raise MailError("MAILHOST=sendmail, but there is no sendmail (install an MTA, e.g. "
                        "apt-get install msmtp-mta, or set MAILHOST=host:port)")
    try:
        r = subprocess.run([path, "-t", "-i"], input=msg.as_bytes(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MailError(f"{path} did not finish within {timeout:.0f} s") from None
    except OSError as e:
        raise MailError(f"cannot run {path}: {e.strerror or e}") from None
    if r.returncode != 0:
        why = _text(r.stderr or r.stdout)[:200] or "no message"
        raise MailError(f"{path} -t -i exited with status {r.returncode}: {why}")
    return f"via {path}"
