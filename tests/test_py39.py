"""Watcher runs on the system Python of RHEL 9 (3.9): checked statically with vermin,
since the machines here only have 3.11."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT


def test_code_needs_nothing_newer_than_python_3_9():
    vermin = shutil.which("vermin") or os.path.join(ROOT, ".venv", "bin", "vermin")
    if not os.path.exists(vermin):
        pytest.skip("vermin missing: pip install vermin (tests/run does)")
    targets = ["lib", "modules", "watcher.py", "Prep"]
    r = subprocess.run([vermin, "--target=3.9-", "--no-tips", "--violations", "--eval-annotations",
                        "--backport", "dataclasses", *targets], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # it must really have looked at the scripts without .py too
    assert "Prep" in subprocess.run([vermin, "-vv", "--no-tips", "Prep"], cwd=ROOT, capture_output=True,
                                    text=True).stdout
