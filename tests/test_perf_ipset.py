"""The long-lived `ipset -` a module bans through (lib.ipsetstream.IpsetStream), in a network
namespace of its own: a batch lands in the kernel, a refused command is named while the
others still land, a dead or stalled process costs no ban, and the other backends keep
the same verbs."""
import os
import signal
import subprocess

import pytest

from conftest import netns_problem
from lib.firewall import DryRun, FirewallError, Ipset, Recording


@pytest.fixture(scope="module")
def ns():
    problem = netns_problem()
    if problem:
        pytest.skip(problem)
    name = f"wperf-{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def fw(ns, tmp_path):
    f = Ipset(str(tmp_path / "firewall.created"), prefix=["ip", "netns", "exec", ns])
    f.setup()
    f.keep_process()
    yield f
    f.close()
    f.teardown()


def members(ns, name):
    out = subprocess.run(["ip", "netns", "exec", ns, "ipset", "list", name], capture_output=True, text=True).stdout
    return set(out.split("Members:\n", 1)[1].split()) if "Members:\n" in out else set()


def test_verbs_queue_until_flush_then_land_in_the_kernel(ns, fw):
    fw.custody("198.51.100.1", False)
    fw.custody("2001:db8::1", True)
    fw.tarpit("198.51.100.2", 60, False)
    assert "198.51.100.1" not in members(ns, "custody")          # queued, not applied yet
    assert fw.flush() == 3
    assert "198.51.100.1" in members(ns, "custody") and "2001:db8::1" in members(ns, "custody6")
    assert "198.51.100.2" in members(ns, "tarpit")
    fw.custody("198.51.100.1", False)                            # again: -exist, no error
    fw.release("198.51.100.2", False, tarpit_only=True)
    assert fw.flush() == 2
    assert "198.51.100.2" not in members(ns, "tarpit")
    assert fw.stream.started == 1 and fw.stream.fallbacks == 0


def test_a_refused_command_is_named_and_the_others_still_land(ns, fw):
    fw.custody("198.51.100.10", False)
    fw._queue.append("add no-such-set 198.51.100.11")           # what the kernel refuses
    fw.custody("198.51.100.12", False)
    with pytest.raises(FirewallError) as e:
        fw.flush()
    assert "add no-such-set 198.51.100.11" in str(e.value) and "1 of 3" in str(e.value)
    assert {"198.51.100.10", "198.51.100.12"} <= members(ns, "custody")
    fw.custody("198.51.100.13", False)                           # the process goes on
    assert fw.flush() == 1 and "198.51.100.13" in members(ns, "custody")


def test_a_killed_ipset_process_is_replaced_and_no_ban_is_lost(ns, fw):
    fw.custody("198.51.100.20", False)
    fw.flush()
    os.kill(fw.stream.proc.pid, signal.SIGKILL)
    fw.stream.proc.wait()
    fw.custody("198.51.100.21", False)
    assert fw.flush() == 1
    assert "198.51.100.21" in members(ns, "custody")
    assert fw.stream.started == 2


def test_a_process_that_stops_answering_costs_no_ban(ns, tmp_path):
    f = Ipset(str(tmp_path / "firewall.created"), prefix=["ip", "netns", "exec", ns])
    f.setup()
    f.keep_process(timeout=0.5)
    try:
        f.custody("198.51.100.30", False)
        f.flush()
        stuck = f.stream.proc
        os.kill(stuck.pid, signal.SIGSTOP)
        for i in range(31, 41):
            f.custody(f"198.51.100.{i}", False)
        assert f.flush() == 10                  # applied again another way after 0.5 s
        assert {f"198.51.100.{i}" for i in range(31, 41)} <= members(ns, "custody")
        assert f.stream.fallbacks == 1 and stuck.poll() is not None
    finally:
        f.close()
        f.teardown()


def test_a_large_batch_with_many_failures_does_not_deadlock(ns, fw):
    # more error lines than a pipe holds while the batch is still being written
    for i in range(3000):
        fw._queue.append(f"add no-such-set 10.1.{i // 250}.{i % 250 + 1}")
        fw.custody(f"10.2.{i // 250}.{i % 250 + 1}", False)
    with pytest.raises(FirewallError) as e:
        fw.flush()
    assert "3000 of 6000" in str(e.value)
    assert len({ip for ip in members(ns, "custody") if ip.startswith("10.2.")}) == 3000


def test_dry_run_and_recording_keep_the_same_verbs():
    for f in (DryRun(say=lambda _: None), Recording()):
        f.keep_process()
        f.custody("198.51.100.40", False)
        assert f.flush() == 0
        f.close()
    r = Recording()
    r.keep_process()
    r.custody("198.51.100.41", False)
    assert r.sets["custody"] == {"198.51.100.41": None}        # applied at once, as before


def test_a_bulk_flush_goes_through_restore_and_still_names_refusals(ns, fw):
    from lib.firewall import BULK
    for i in range(BULK + 10):
        fw.custody(f"10.3.{i // 250}.{i % 250 + 1}", False)
    fw._queue.insert(5, "add no-such-set 10.4.0.1")
    with pytest.raises(FirewallError) as e:
        fw.flush()
    assert "add no-such-set 10.4.0.1" in str(e.value)
    assert len({ip for ip in members(ns, "custody") if ip.startswith("10.3.")}) == BULK + 10
    assert fw.stream.started == 0          # the interactive process was not needed
