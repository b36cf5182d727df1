"""FIFO reading: writers that come and go, bad bytes and overlong lines never stop it."""
import os
import select

from lib.fifo import MAX_LINE, FifoReader, ensure_fifo


def drain(reader, want, seconds=2.0):
    got = []
    while len(got) < want:
        r, _, _ = select.select([reader], [], [], seconds)
        if not r:
            break
        got += reader.read_lines()
    return got


def writer(path):
    return os.open(path, os.O_WRONLY | os.O_NONBLOCK)


def test_survives_writers_closing_and_reopening(tmp_path):
    path = str(tmp_path / "WatchLG")
    assert ensure_fifo(path) and not ensure_fifo(path)
    r = FifoReader(path)
    for i in range(3):
        fd = writer(path)
        os.write(fd, f"line {i}\n".encode())
        os.close(fd)                       # the writer goes away: no EOF for the reader
    assert drain(r, 3) == ["line 0", "line 1", "line 2"]
    r.close()


def test_pipe_is_enlarged(tmp_path):
    path = str(tmp_path / "f")
    ensure_fifo(path)
    r = FifoReader(path)
    assert r.pipe_size > 65536
    r.close()


def test_bad_bytes_and_overlong_lines(tmp_path):
    path = str(tmp_path / "f")
    ensure_fifo(path)
    kinds, lines = [], []
    r = FifoReader(path, on_oddity=kinds.append)
    fd = writer(path)
    os.write(fd, b"nul\0byte\n\xff\xfe bad utf8\n")
    big = b"x" * (1 << 20)                  # a 1 MB line (more than the pipe holds), then a real one
    for i in range(0, len(big), 32768):
        os.write(fd, big[i:i + 32768])
        while select.select([r], [], [], 0)[0]:
            lines += r.read_lines()
    os.write(fd, b"\nafter the big one\n")
    os.close(fd)
    lines += drain(r, 10, 0.3)
    assert lines[0] == "nulbyte"
    assert lines[1].endswith(" bad utf8")
    assert len(lines[2]) == MAX_LINE and set(lines[2]) == {"x"}
    assert lines[3:] == ["after the big one"]
    assert any("NUL" in k for k in kinds) and any("UTF-8" in k for k in kinds) and any("overlong" in k for k in kinds)
    r.close()


def test_lines_in_the_pipe_wait_for_the_next_reader(tmp_path):
    path = str(tmp_path / "f")
    ensure_fifo(path)
    first = FifoReader(path)
    fd = writer(path)
    os.write(fd, b"one\ntwo\n")
    first.close()                           # module stops; the logger still holds the pipe
    second = FifoReader(path)
    assert drain(second, 2) == ["one", "two"]
    os.close(fd)
    second.close()


def test_lines_peeked_but_not_committed_stay_for_the_next_reader(tmp_path):
    path = str(tmp_path / "f")
    ensure_fifo(path)
    logger = os.open(path, os.O_RDWR | os.O_NONBLOCK)       # the logger keeps the pipe open
    first = FifoReader(path)
    os.write(logger, b"one\ntwo\nthr")
    assert first.peek() == ["one", "two"]
    first.close()                           # killed before acting on them
    second = FifoReader(path)
    assert second.peek() == ["one", "two"]
    second.commit()
    assert second.peek() == [] and second.partial           # 'thr' waits for the rest of its line
    os.write(logger, b"ee\n")
    assert drain(second, 1) == ["three"]
    os.close(logger)
    second.close()


def test_fifo_for_a_logger_that_runs_as_syslog(tmp_path, monkeypatch):
    """Ubuntu's rsyslog drops privileges to the user syslog: the FIFO must be its group's
    to read and write (ompipe opens it read-write), and nobody else's."""
    import pwd
    import stat
    from lib import fifo

    class Syslog:
        pw_uid, pw_gid = 104, 110
    monkeypatch.setattr(fifo.pwd, "getpwnam", lambda name: Syslog if name == "syslog" else pwd.getpwnam(name))
    assert fifo.logger_owner() == (0, 110)
    path = str(tmp_path / "WatchLG")
    ensure_fifo(path)
    st = os.stat(path)
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 110)
    monkeypatch.setattr(fifo.pwd, "getpwnam", lambda name: (_ for _ in ()).throw(KeyError(name)))
    other = str(tmp_path / "WatchMX")
    ensure_fifo(other)
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o600          # Debian: rsyslog runs as root
