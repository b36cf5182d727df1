"""The mail extractors of lib/mailfields.py: the peer comes from the daemon's own field,
never from client text, and the attempt key ties the lines of one session."""
import pytest

from lib.extract import program
from lib.mailfields import (courier_peer, dbmail_message, dbmail_peer, dovecot_login, dovecot_passdb, dovecot_reason,
                            mailbox_peer, postfix_client, postfix_mta, postfix_reject, postfix_unverified)

SMTPD = "Nov 22 10:00:00 mx1 postfix/smtpd[4244]: "
VICTIM = "198.51.100.9"


@pytest.mark.parametrize("line,want", [
    ("Nov 22 10:00:00 mx1 postfix/smtpd[4244]: connect from x[1.2.3.4]", ("postfix/smtpd", 4244)),
    ("2026-11-22T10:00:00.1+01:00 mx1 postfix/submission/smtpd[17]: x", ("postfix/submission/smtpd", 17)),
    ("<22>1 2026-11-22T10:00:00.1Z mx1 postfix/postscreen 900 - - PASS NEW [1.2.3.4]:1", ("postfix/postscreen", 900)),
    ("<22>Nov 22 10:00:00 mx1 dovecot: imap-login: x", ("dovecot", None)),
    ("Nov 22 10:00:00 mx1 dovecot[812]: imap-login: x", ("dovecot", 812)),
    ("postfix/smtpd[1]: connect from x[1.2.3.4]", ("postfix/smtpd", 1)),
    ("no header at all", ("", None)),
])
def test_program_is_the_syslog_tag(line, want):
    assert program(line) == want


def test_postfix_client_is_the_first_bracket_after_the_fixed_words():
    line = (SMTPD + f"NOQUEUE: reject: RCPT from unknown[203.0.113.5]: 554 5.7.1 <x[{VICTIM}]@e>: Relay access "
            f"denied; from=<a[{VICTIM}]@b> to=<x[{VICTIM}]@e> proto=ESMTP helo=<[{VICTIM}]>")
    assert postfix_client(line) == ("203.0.113.5", 4244)          # no client port logged: the smtpd pid keys it
    assert postfix_client(SMTPD + "connect from unknown[2001:db8::5]:40123") == ("2001:db8::5", 40123)
    assert postfix_client(SMTPD + "warning: unknown[203.0.113.6]: SASL LOGIN authentication failed: "
                                  f"x, sasl_username=a from unknown[{VICTIM}]", "warning: ") == ("203.0.113.6", 4244)


@pytest.mark.parametrize("msg", [
    f"warning: unknown[203.0.113.6]: SASL LOGIN authentication failed: a from unknown[{VICTIM}]",   # wrong marker
    f"lost connection after AUTH from x y[{VICTIM}]",              # a name with a space is no host name
    f"PREGREET sasl_username=x from unknown[{VICTIM}]",            # client marks before the client field
    f'NOQUEUE: reject: RCPT from "a"[{VICTIM}]: 554 x',
    f"connect from <x>[{VICTIM}]",
    "connect from unknown",
])
def test_postfix_client_refuses_what_postfix_does_not_write(msg):
    assert postfix_client(SMTPD + msg) == (None, None)


def test_postfix_client_only_trusts_smtpd_and_postscreen():
    for tag in ("postfix/cleanup[1]", "postfix/qmgr[1]", "postfix/smtp[1]", "amavis[1]", "dovecot"):
        line = f"Nov 22 10:00:00 mx1 {tag}: connect from unknown[{VICTIM}]"
        assert postfix_client(line) == (None, None), tag
    assert postfix_client("Nov 22 10:00:00 mx1 postfix-in/postscreen[9]: DNSBL rank 3 for [203.0.113.7]:5",
                          " for ") == ("203.0.113.7", 5)


def test_postfix_mta_is_the_port_25_smtpd():
    assert postfix_mta(SMTPD + "x") and postfix_mta("Nov 22 10:00:00 mx1 postfix-in/smtpd[1]: x")
    for tag in ("postfix/submission/smtpd[1]", "postfix/smtps/smtpd[1]", "postfix/postscreen[1]", "dovecot"):
        assert not postfix_mta(f"Nov 22 10:00:00 mx1 {tag}: x"), tag


def test_postfix_reject_needs_the_queue_id_form():
    assert postfix_reject(SMTPD + "NOQUEUE: reject: RCPT from x[1.2.3.4]: 554 no").startswith("RCPT from x[")
    assert postfix_reject(SMTPD + "4F2B81C0A2: reject: RCPT from x[1.2.3.4]: 554 no").startswith("RCPT from x[")
    assert postfix_reject(SMTPD + "warning: x: reject: RCPT from x[1.2.3.4]: 554 no") == ""
    assert postfix_reject("Nov 22 10:00:00 mx1 postfix/cleanup[1]: 4F2B81C0A2: reject: header x") == ""


@pytest.mark.parametrize("msg,want", [
    ("warning: hostname a.example does not resolve to address 203.0.113.8: Name or service not known", "203.0.113.8"),
    ("warning: hostname a.example does not resolve to address 2001:db8::: Name or service not known", "2001:db8::"),
    ("warning: hostname a.example does not resolve to address 2001:db8::8", "2001:db8::8"),
    ("warning: 203.0.113.9: hostname a.example verification failed: Name or service not known", "203.0.113.9"),
    ("warning: 203.0.113.9: address not listed for hostname a.example", "203.0.113.9"),
    (f"warning: hostname a<b does not resolve to address {VICTIM}", None),
    (f"warning: {VICTIM}: SASL LOGIN authentication failed", None),
])
def test_postfix_unverified(msg, want):
    assert postfix_unverified(SMTPD + msg)[0] == want


DOVECOT = "Nov 22 10:00:00 mx1 dovecot: "


def test_dovecot_login_takes_the_last_rip_and_the_session_as_key():
    a = DOVECOT + ("imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x, rip=198.51.100.9, "
                   "lip=1.1.1.1, session=<z>>, method=PLAIN, rip=203.0.113.10, lip=192.0.2.1, TLS, session=<Ab12>")
    b = a.replace("Disconnected (auth failed, 1 attempts in 2 secs)", "Login")
    assert dovecot_reason(a) == "Disconnected (auth failed, 1 attempts in 2 secs)" and dovecot_reason(b) == "Login"
    assert dovecot_login(a)[0] == "203.0.113.10" and dovecot_login(a)[1] == dovecot_login(b)[1] is not None
    assert dovecot_login(a.replace("<Ab12>", "<Cd34>"))[1] != dovecot_login(a)[1]


@pytest.mark.parametrize("msg", [
    f"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x, rip={VICTIM}, lip=1.1.1.1>",
    f"imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x, rip={VICTIM}",      # no real rip
    "imap-login: Disconnected (auth failed, 1 attempts): user=<" + "a" * 1000 + f", rip={VICTIM}, lip=1.1.1.1",
    f"imap-login: Disconnected (auth failed, 1 attempts): user=<x>, rip={VICTIM} and more",
    f"imap(bob): Disconnected (auth failed, 1 attempts): user=<x>, rip={VICTIM}",
])
def test_dovecot_login_refuses_a_rip_that_dovecot_did_not_write(msg):
    assert dovecot_login(DOVECOT + msg) == (None, None)


def test_dovecot_lines_are_only_dovecots():
    msg = f"imap-login: Disconnected (auth failed, 1 attempts): user=<x>, rip={VICTIM}, lip=1.1.1.1"
    assert dovecot_login(SMTPD + msg) == (None, None) and dovecot_reason(SMTPD + msg) == ""


@pytest.mark.parametrize("msg,want", [
    ("auth: passwd-file(bob,203.0.113.11,<Ab12>): unknown user", "203.0.113.11"),
    ("auth: passwd-file(bob,203.0.113.11,master,<Ab12>): Password mismatch", "203.0.113.11"),
    ("auth-worker(9): pam(bob,2001:db8::11): pam_authenticate() failed: Authentication failure (password mismatch?)",
     "2001:db8::11"),
    ("auth: sql(bob,203.0.113.11,<A>): Password mismatch (SHA1 of given password: 2c3a9e) - trying the next passdb",
     "203.0.113.11"),
    (f"auth: passwd-file(a,{VICTIM},<s>): unknown user,203.0.113.12,<Ab12>): unknown user", "203.0.113.12"),
    (f"auth: passwd-file(a,{VICTIM}): Password mismatch (given password: x,{VICTIM}): Password mismatch)", None),
    (f"auth: passwd-file(a,{VICTIM}): Password mismatch (SHA1 of given password: zz,{VICTIM}): Password mismatch)",
     None),
    ("auth: passwd-file(bob,203.0.113.13): unknown user trailing", None),
    ("auth: passwd-file(" + "x," * 500 + f"{VICTIM}): unknown user", None),            # may have been cut
    ("auth: passwd-file(bob,<Ab12>): unknown user", None),                          # no address logged
])
def test_dovecot_passdb_reads_the_field_from_the_right(msg, want):
    assert dovecot_passdb(DOVECOT + msg)[0] == want


def test_courier_and_dbmail():
    assert courier_peer("Nov 22 10:00:00 mx1 imapd: LOGIN FAILED, user=x, ip=[::ffff:198.51.100.9], "
                        "ip=[::ffff:203.0.113.14], port=[4]") == ("::ffff:203.0.113.14", 4)
    assert courier_peer("Nov 22 10:00:00 mx1 imapd: LOGIN FAILED, user=x, ip=[::ffff:198.51.100.9] x") == (None, None)
    assert courier_peer("Nov 22 10:00:00 mx1 sshd[1]: LOGIN FAILED, ip=[203.0.113.14]") == (None, None)
    pop = "Nov 22 10:00:00 mx1 dbmail-pop3d[1]: Error:[pop3] pop3(+309): "
    assert dbmail_message(pop + "user [a] coming from [203.0.113.15] tried") == "user [a] coming from [203.0.113.15] tried"
    assert dbmail_peer(pop + f"user [a] coming from [{VICTIM}] tried to login with wrong password] coming from "
                             "[203.0.113.15] tried to login with wrong password") == ("203.0.113.15", None)
    # DBmail cuts its messages at 4 KB: a long user name could put a forged ending at the cut
    assert dbmail_peer(pop + "user [" + "a" * 4000 + f"] coming from [{VICTIM}] tried to login with wrong "
                                                      "password") == (None, None)
    imap = "Nov 22 10:00:00 mx1 dbmail-imapd[2]: Notice:[imap] dbmail_imap_session_handle_auth(+1042): [0x55] "
    assert dbmail_peer(imap + "login rejected: user [a] from [2001:db8::16:50212]") == ("2001:db8::16", 50212)
    assert dbmail_peer(imap + f"login rejected: user [a] from [{VICTIM}:1]] from [x]") == (None, None)


def test_mailbox_peer_picks_the_extractor_by_program():
    assert mailbox_peer(DOVECOT + "imap-login: Disconnected (auth failed, 1 attempts): user=<x>, rip=203.0.113.17, "
                                  "lip=1.1.1.1")[0] == "203.0.113.17"
    assert mailbox_peer(DOVECOT + "auth: pam(x,203.0.113.18): unknown user")[0] == "203.0.113.18"
    assert mailbox_peer(SMTPD + "warning: unknown[203.0.113.19]: SASL LOGIN authentication failed: x")[0] == \
        "203.0.113.19"
    assert mailbox_peer(SMTPD + "lost connection after AUTH from unknown[203.0.113.20]")[0] == "203.0.113.20"
    assert mailbox_peer("Nov 22 10:00:00 mx1 pop3d: LOGIN FAILED, user=x, ip=[203.0.113.21]")[0] == "203.0.113.21"
    assert mailbox_peer("Nov 22 10:00:00 mx1 other: rip=203.0.113.22") == (None, None)
