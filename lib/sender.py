"""Who wrote a line: the sender's credentials that the kernel vouches for.

Watcher's syslog snippets put the sending process's user id (and, with
rsyslog, its executable) in front of every line, taken from the socket's
SCM_CREDENTIALS, not from the text:

    [watcher uid=0 exe=\\/usr\\/sbin\\/sshd] Nov 22 10:00:00 web1 sshd[42]: Failed password ...

A local user can write any text with `logger -t sshd`, but not as uid 0 nor
as the sshd binary.  A module accepts a credentialed line only from the
users (SENDER_USERS) and programs (SENDER_PROGRAMS) of the daemons it is
about.  SENDER_CHECK: `on` judges lines without credentials on their text
(a plain file, `watcher.py test`, a logger without the snippet), `strict`
refuses them, `off` checks nothing.  The prefix is always taken off before
the rules see the line, so rules never depend on it.  The executable is
best effort (rsyslog reads it from /proc, and a process that has exited is
gone): where it is empty only the user id is judged.
"""
import json
import os
import pwd
from typing import Iterable, NamedTuple, Optional, Tuple

PREFIX = "[watcher uid="


class Credentials(NamedTuple):
    uid: int
    exe: str            # "" where the logger could not read it


def split(line: str) -> Tuple[Optional[Credentials], str]:
    """(credentials or None, the line without them)."""
    if not line.startswith(PREFIX):
        return None, line
    end = line.find("] ", len(PREFIX))
    if end < 0:
        return None, line
    fields = line[len(PREFIX):end]
    uid_text, _, rest = fields.partition(" ")
    exe = rest[4:] if rest.startswith("exe=") else ""
    if "\\" in exe:                  # JSON-escaped by the template ('\/' for '/')
        try:
            exe = json.loads('"' + exe + '"')
        except ValueError:
            exe = "?"
    if not uid_text.isdigit():      # the logger had no credentials for it (annotation off)
        return None, line[end + 2:]
    return Credentials(int(uid_text), exe), line[end + 2:]


def user_ids(names: Iterable[str]) -> frozenset:
    """Numeric ids of the named users that exist on this host (others are skipped)."""
    out = set()
    for name in names:
        if name.isdigit():
            out.add(int(name))
            continue
        try:
            out.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass
    return frozenset(out)


class SenderCheck:
    def __init__(self, mode: str, users: Iterable[str] = (), programs: Iterable[str] = ()):
        self.mode = mode
        self.uids = user_ids(users)
        self.any_user = not list(users)
        self.programs = frozenset(programs)

    def refuse(self, creds: Optional[Credentials]) -> Optional[str]:
        """Why the line must not count, or None when it may."""
        if self.mode == "off":
            return None
        if creds is None:
            return "no sender credentials (SENDER_CHECK=strict)" if self.mode == "strict" else None
        if not self.any_user and creds.uid not in self.uids:
            return f"sent by uid {creds.uid}, not by the daemon's user"
        if creds.exe and self.programs and os.path.basename(creds.exe) not in self.programs:
            return f"sent by {creds.exe}, not by {'/'.join(sorted(self.programs))}"
        return None
