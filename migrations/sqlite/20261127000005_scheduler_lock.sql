-- On SQLite one process runs the scheduler: it holds this row, renewed by heartbeat.
CREATE TABLE scheduler_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    owner TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
