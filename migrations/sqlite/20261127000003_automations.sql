-- Automations: one row holds all the scheduler needs. Parts that are lists or
-- vary by event/job kind are JSON text.

CREATE TABLE automations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    owner_id INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_filter TEXT NOT NULL DEFAULT '{}',
    selection TEXT NOT NULL DEFAULT '[]',
    job_kind TEXT,
    job_target TEXT,
    delay_unit TEXT,
    delay_value INTEGER,
    start_at INTEGER,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    end_at INTEGER,
    execution_days INTEGER NOT NULL DEFAULT 127,
    holidays TEXT NOT NULL DEFAULT 'always',
    notify_user_ids TEXT NOT NULL DEFAULT '[]',
    notify_days_before INTEGER NOT NULL DEFAULT 30,
    state TEXT NOT NULL DEFAULT 'inactive' CHECK (state IN ('inactive', 'active', 'deactivated')),
    activated_at INTEGER,
    deactivated_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX automations_event ON automations (event_type, state);
CREATE INDEX automations_state ON automations (state, id);
