"""The compact attempt table (one small tuple per address) decides exactly as the plain one did.

lib.affairs keeps the attempts of the last DEDUP_SECONDS per address as a tuple
of (start, rule bits, port), so a flood of new addresses costs little memory.
Here random sequences of lines (few addresses, few ports, port-less lines, rules
seen again, times that run past the window) go through it and through the
straightforward table of dicts and sets it replaced; every answer must agree."""
import random

from lib.affairs import DEDUP_SECONDS, Tracker


class PlainTable:
    """The reference: (address, port) -> (start, set of rules), and the latest key per address."""

    def __init__(self):
        self.attempts, self.last = {}, {}

    def companion(self, ip, port, rule, now):
        if port is None:
            last = self.attempts.get(self.last.get(ip))
            if last and now - last[0] <= DEDUP_SECONDS and rule not in last[1]:
                last[1].add(rule)
                return True
            self.start((ip, None), rule, now)
            return False
        key = (ip, port)
        seen = self.attempts.get(key)
        if seen and now - seen[0] <= DEDUP_SECONDS and rule not in seen[1]:
            seen[1].add(rule)
            return True
        pending = self.attempts.pop((ip, None), None)
        if pending and now - pending[0] <= DEDUP_SECONDS and rule not in pending[1]:
            pending[1].add(rule)
            self.attempts[key] = pending
            self.last[ip] = key
            return True
        self.start(key, rule, now)
        return False

    def start(self, key, rule, now):
        self.attempts[key] = (now, {rule})
        self.last[key[0]] = key


def compact():
    t = Tracker.__new__(Tracker)        # only the attempt table is exercised
    t._attempts, t._bits = {}, {}
    return t


def test_compact_table_agrees_with_the_plain_one_on_random_lines():
    rnd = random.Random(7)
    for _ in range(200):
        plain, small, now = PlainTable(), compact(), 1000.0
        for _ in range(60):
            now += rnd.choice([0.0, 0.1, 0.5, 2.0, 4.0, 9.0, 11.0])
            ip = rnd.choice(["198.51.100.1", "198.51.100.2", "2001:db8::3"])
            port = rnd.choice([None, None, 4001, 4002, 4003])
            rule = rnd.choice(["invalid-user", "invalid-user-password", "pam-failure", "user-not-allowed"])
            assert small._companion(ip, port, rule, now) == plain.companion(ip, port, rule, now)


def test_a_flood_of_new_addresses_keeps_one_small_entry_each():
    t = compact()
    for i in range(1000):
        assert t._companion(f"100.64.{i // 256}.{i % 256}", 40000 + i, "root-password", 1000.0 + i / 1000) is False
    assert len(t._attempts) == 1000
    assert all(len(v) == 1 for v in t._attempts.values())
