-- Times are milliseconds since the Unix epoch (UTC); flags are 0/1 integers, so the
-- same queries and Rust types serve SQLite and PostgreSQL.

CREATE TABLE system_users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'marketer')),
    disabled INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT,
    temp_hash TEXT,
    temp_expires_at INTEGER,
    temp_used_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id INTEGER,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (kind, user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor_id INTEGER,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE signin_failures (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    ip TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX signin_failures_account ON signin_failures (account, at);
CREATE INDEX signin_failures_ip ON signin_failures (ip, at);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
