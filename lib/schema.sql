-- Schema template of a Watcher module database; each module's WatchXX.schema links here
-- (Prep creates the database from it).
-- Times are Unix seconds (UTC).  One row per address; `events` keeps each counted affair
-- for the statistics.  Bump user_version and add a migration in lib/db.py on any change.
CREATE TABLE IF NOT EXISTS hosts (
    ip           TEXT PRIMARY KEY,          -- canonical address text (IPv4-mapped IPv6 stored as IPv4)
    class        TEXT NOT NULL DEFAULT 'UNKNOWN',   -- NXDOMAIN, FAKEHOST, TRUEHOST or UNKNOWN
    name         TEXT,                      -- PTR name, when there is one
    rule         TEXT NOT NULL,             -- rule of the last affair
    module       TEXT NOT NULL,             -- module token of the last affair (LG, MX, MB, WB)
    introduced   REAL NOT NULL,             -- first seen
    last_seen    REAL NOT NULL,
    affairs      INTEGER NOT NULL DEFAULT 0,
    dropped      REAL,                      -- when it went into custody; NULL while not
    tarpit_until REAL                       -- end of its tarpit timeout; NULL when none
);
CREATE INDEX IF NOT EXISTS hosts_last_seen ON hosts(last_seen);
CREATE TABLE IF NOT EXISTS events (
    time   REAL NOT NULL,
    ip     TEXT NOT NULL,
    rule   TEXT NOT NULL,
    module TEXT NOT NULL,
    vhost  TEXT                     -- WatchWB: the virtual host the request was for; NULL elsewhere
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_vhost ON events(vhost);
PRAGMA user_version = 2;
