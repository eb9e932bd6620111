-- Job runs: one execution of an automation's job for one event. The unique key
-- makes a replayed event harmless.

CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    automation_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    job_kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped', 'cancelled', 'expired')),
    due_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at INTEGER,
    target_kind TEXT,
    target_id INTEGER,
    outcome TEXT,
    last_error TEXT,
    errors TEXT NOT NULL DEFAULT '[]',
    message_id TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    UNIQUE (automation_id, event_id)
);
CREATE INDEX job_runs_due ON job_runs (status, due_at);
CREATE INDEX job_runs_automation ON job_runs (automation_id, id);
CREATE INDEX job_runs_target ON job_runs (target_kind, target_id, finished_at);
