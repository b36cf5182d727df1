"""Statistics: what a module database says per day, as CSV and as a chart.

Model (manual 1.3.2 and 3.2): one row per local calendar day, from the
first day the database knows of to the last, with no gaps (a day without
attacks reads 0, so a spreadsheet's chart and ours keep a true time axis):

    date,introduced,dropped,NXDOMAIN,FAKEHOST,TRUEHOST,UNKNOWN,rule:NAME,...

`introduced`: addresses first seen that day; `dropped`: addresses put into
custody that day; one column per class (addresses introduced that day in
that class) and one per rule (affairs counted that day by that rule, from
the events table, in rule-name order).  The rows cover what ExpireXX has
left.  An empty database gives the header row alone.

`StatXX` mails the CSV to REPORTMAIL as a text/csv attachment named
StatXX-YYYYMMDD.csv, with a hand-drawn SVG chart of introduced against
dropped per day: shown by the HTML alternative of the mail and attached
inline as image/svg+xml (a file any browser opens).  When the mail cannot
be sent the CSV is written to DATA_DIR and the command says where.

Per virtual host (WatchWB records the host with each affair): the same
table over that host's affairs alone (introduced: first affair on that host;
dropped: put into custody after affairs there), mailed to the host's owner
(VHOST_OWNERS; REPORTMAIL when it has none) with the host's busiest
addresses, as StatXX-HOST-YYYYMMDD.csv.  Such a mail names no other host and
no address that was not counted on its host, so customers stay apart; the
server's total still goes to REPORTMAIL.
"""
import argparse
import csv
import html
import io
import math
import os
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable, List, Optional, Sequence, Tuple

from lib.db import Database
from lib.errors import UsageError, WatcherError
from lib.expire import CLASSES

BASE_COLUMNS = ("date", "introduced", "dropped")
SERIES = (("introduced", "#3b6fb6", "introduced (first seen)"), ("dropped", "#c8372d", "dropped (custody)"))


@dataclass(frozen=True)
class Table:
    header: List[str]
    rows: List[List]          # [day text, ints...]

    def column(self, name: str) -> List[int]:
        i = self.header.index(name)
        return [r[i] for r in self.rows]

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(self.header)
        w.writerows(self.rows)
        return out.getvalue()


def table(db: Database, vhost: Optional[str] = None) -> Table:
    """The per-day table of one database, or of one virtual host's affairs in it (local days,
    see the module docstring)."""
    intro = db.introduced_per_day(vhost)
    drops = db.dropped_per_day(vhost)
    affairs = db.affairs_per_day(vhost)
    rules = sorted({r for _, r, _ in affairs})
    classes = list(CLASSES) + sorted({c for _, c, _ in intro} - set(CLASSES))
    header = list(BASE_COLUMNS) + classes + [f"rule:{r}" for r in rules]
    days = {d for d, _, _ in intro} | {d for d, _ in drops} | {d for d, _, _ in affairs}
    days.discard(None)
    if not days:
        return Table(header, [])
    col = {name: i for i, name in enumerate(header)}
    first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    index, rows = {}, []
    for n in range((last - first).days + 1):
        day = (first + timedelta(days=n)).isoformat()
        index[day] = len(rows)
        rows.append([day] + [0] * (len(header) - 1))
    for day, cls, count in intro:
        rows[index[day]][col["introduced"]] += count
        rows[index[day]][col[cls]] += count
    for day, count in drops:
        rows[index[day]][col["dropped"]] += count
    for day, rule, count in affairs:
        rows[index[day]][col[f"rule:{rule}"]] += count
    return Table(header, rows)


# ---------------------------------------------------------------- the chart
def _nice_step(top: int, ticks: int = 5) -> int:
    """A round step (1, 2, 5 x 10^n) so that about `ticks` steps reach `top`."""
    raw = max(1, top) / ticks
    magnitude = 1
    while magnitude * 10 <= raw:
        magnitude *= 10
    for m in (1, 2, 5, 10):
        if m * magnitude >= raw:
            return m * magnitude
    return 10 * magnitude


def chart_svg(t: Table, title: str) -> str:
    """Bars of introduced and dropped per day, with axes, day labels and a legend."""
    days = [r[0] for r in t.rows]
    values = {name: t.column(name) if t.rows else [] for name, _, _ in SERIES}
    left, right, top, bottom, height = 64, 20, 60, 72, 340
    n = max(1, len(days))
    width = max(480, int(left + right + n * max(8.0, min(48.0, 880.0 / n))))
    slot = (width - left - right) / n                 # pixels per day
    plot_h = height - top - bottom
    highest = max([1] + values["introduced"] + values["dropped"])
    step = _nice_step(highest)
    ymax = step * math.ceil(highest / step)

    def y(v):
        return top + plot_h - plot_h * v / ymax
    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{e(title)}</text>']
    for k in range(0, ymax + 1, step):           # horizontal grid and y labels
        yy = y(k)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="#dddddd"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{k}</text>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#000000"/>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#000000"/>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 16 {top + plot_h / 2:.0f})">addresses</text>')
    bar = slot * 0.38
    label_every = max(1, math.ceil(len(days) / 30), math.ceil(24 / slot))     # at most 30 labels, 24 px apart
    for i, day in enumerate(days):
        x0 = left + i * slot + slot * 0.12
        for j, (what, colour, _) in enumerate(SERIES):
            v = values[what][i]
            if v:
                out.append(f'<rect x="{x0 + j * bar:.1f}" y="{y(v):.1f}" width="{bar:.1f}" '
                           f'height="{top + plot_h - y(v):.1f}" fill="{colour}"><title>{day} {what} {v}</title></rect>')
        if i % label_every == 0:
            cx, cy = left + (i + 0.5) * slot, top + plot_h + 10
            out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
                       f'transform="rotate(-45 {cx:.1f} {cy:.1f})">{day}</text>')
    if not days:
        out.append(f'<text x="{(left + width - right) / 2:.0f}" y="{top + plot_h / 2:.0f}" '
                   f'text-anchor="middle" fill="#666666">no addresses in the database</text>')
    for j, (_, colour, label) in enumerate(SERIES):
        lx = left + j * 180                       # legend: one line under the title
        out.append(f'<rect x="{lx}" y="32" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="41">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the mail
def stamp(now: float) -> str:
    return time.strftime("%Y%m%dT%H:%M:%S", time.localtime(now))


def file_name(token: str, now: float, ext: str = "csv", vhost: Optional[str] = None) -> str:
    return f"Stat{token}-{vhost + '-' if vhost else ''}{time.strftime('%Y%m%d', time.localtime(now))}.{ext}"


def summary(t: Table) -> str:
    if not t.rows:
        return "The database holds no addresses: the CSV carries its header row alone."
    intro, drop = sum(t.column("introduced")), sum(t.column("dropped"))
    return (f"{t.rows[0][0]} to {t.rows[-1][0]} ({len(t.rows)} days): {intro} addresses introduced, "
            f"{drop} dropped into custody.")


def message(token: str, t: Table, to: str, now: float, host: str = "", vhost: Optional[str] = None,
            top: Sequence[Tuple[str, int, str]] = ()):
    """The statistics mail: text and HTML with the chart, the SVG inline, the CSV attached.
    With `vhost`: one virtual host's statistics and its busiest addresses (`top`), for its owner."""
    from lib.mail import new_message
    what = f"Watch{token}" + (f" for {vhost}" if vhost else "") + (f" on {host}" if host else "")
    csv_name, svg_name = file_name(token, now, vhost=vhost), file_name(token, now, "svg", vhost)
    svg = chart_svg(t, f"{what}: introduced against dropped per day")
    busiest = "".join(f"  {ip:<39} {n:6d}  {cls}\n" for ip, n, cls in top)
    if vhost:
        busiest = (f"Addresses with the most affairs on {vhost}:\n{busiest}" if busiest
                   else f"No affairs on {vhost} in the database.\n")
    text = (f"Statistics of {what}, {stamp(now)}.\n\n{summary(t)}\n\n" + (busiest + "\n" if busiest else "")
            + f"The CSV ({csv_name}) opens in any spreadsheet; the chart is {svg_name} (open it in a browser).\n")
    msg = new_message(to, f"Statistics-{token}{' ' + vhost if vhost else ''} {stamp(now)}", text)
    msg.add_alternative(
        f"<html><body><p>Statistics of {html.escape(what)}, {stamp(now)}.</p><p>{html.escape(summary(t))}</p>\n"
        + (f"<pre>{html.escape(busiest)}</pre>\n" if busiest else "")
        + f"{svg}<p>The CSV is attached as {csv_name}.</p></body></html>\n", subtype="html")
    msg.add_attachment(svg.encode(), maintype="image", subtype="svg+xml", filename=svg_name, disposition="inline")
    msg.add_attachment(t.to_csv().encode(), maintype="text", subtype="csv", filename=csv_name)
    return msg


@dataclass(frozen=True)
class Report:
    """One mail StatXX sends: the server's total (vhost None) or one virtual host's."""
    to: str
    table: Table
    vhost: Optional[str] = None
    top: Tuple[Tuple[str, int, str], ...] = ()


def reports(db: Database, settings) -> List[Report]:
    """The total for REPORTMAIL, then one report per virtual host for its owner (VHOST_OWNERS,
    else REPORTMAIL)."""
    out = [Report(settings.REPORTMAIL, table(db))]
    owners = settings.get("VHOST_OWNERS") or {}
    for vhost in db.vhosts():
        out.append(Report(owners.get(vhost, settings.REPORTMAIL), table(db, vhost), vhost,
                          tuple(db.top_attackers(0, 10, vhost))))
    return out


def main(token: str, argv: Sequence[str], environ=None, now: Optional[float] = None,
         say: Callable[[str], None] = print, out=None) -> int:
    """StatXX: the body of modules/WatchXX/StatXX.py."""
    import socket
    import sys
    from lib import config
    from lib.log import LogFile
    from lib.mail import MailError, send

    environ = os.environ if environ is None else environ
    out = sys.stdout if out is None else out
    args = _parser(token).parse_args(list(argv))
    settings = config.load(token, environ)
    now = time.time() if now is None else now
    db = Database(settings.database)
    try:
        if args.vhost is not None:
            vhost = args.vhost.lower()
            if vhost not in db.vhosts():
                raise UsageError(f"--vhost {args.vhost}: no affairs recorded for it "
                                 f"(known: {', '.join(db.vhosts()) or 'none'})")
            todo = [Report(settings.REPORTMAIL, table(db, vhost), vhost)]
        else:
            todo = reports(db, settings)
    finally:
        db.close()
    if args.stdout or args.out:
        text = todo[0].table.to_csv()
        if args.stdout:
            out.write(text)
        else:
            _write(args.out, text)
        return 0
    log = LogFile(settings.log_file, f"Stat{token}", now=lambda: now)
    failed = []
    for r in todo:
        t, what = r.table, f"statistics{' of ' + r.vhost if r.vhost else ''}"
        msg = message(token, t, r.to, now, socket.gethostname(), r.vhost, r.top)
        try:
            how = send(msg, settings.MAILHOST, environ=environ)
        except MailError as e:
            kept = os.path.join(settings.DATA_DIR, file_name(token, now, vhost=r.vhost))
            try:
                _write(kept, t.to_csv())
            except WatcherError as w:
                kept = f"nowhere ({w})"
            _best_effort(log, f"{what} not mailed to {r.to}: {e}; CSV kept in {kept}")
            failed.append(f"{what} not mailed to {r.to}: {e}; the CSV is kept in {kept}")
            continue
        _best_effort(log, f"{what} mailed to {r.to} {how} ({len(t.rows)} days)")
        say(f"Stat{token}: {what} ({len(t.rows)} days) mailed to {r.to} {how}")
    if failed:
        more = f" (and {len(failed) - 1} more mails failed)" if len(failed) > 1 else ""
        raise MailError(failed[0] + more)
    return 0


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _parser(token: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"Stat{token}", description=f"Watch{token}'s statistics per day as CSV, mailed to "
                                                  f"REPORTMAIL through MAILHOST with a chart.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--stdout", action="store_true", help="print the CSV instead of mailing it")
    g.add_argument("--out", metavar="FILE", help="write the CSV to FILE instead of mailing it")
    p.add_argument("--vhost", metavar="NAME", help="only this virtual host's statistics (WatchWB)")
    return p


def _write(path: str, text: str) -> None:
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise WatcherError(f"{path}: cannot write: {e.strerror or e}") from None


def _best_effort(log, text: str) -> None:
    """The module log is where a cron job's outcome is read later; it must not fail the job."""
    try:
        log.write(text)
    except OSError:
        pass


def module_main(token: str) -> None:
    """Entry point of modules/WatchXX/StatXX.py."""
    from lib.errors import cli_main
    cli_main(lambda argv: main(token, argv), f"Stat{token}")
