-- Contacts, groups, the events table and CSV imports.
-- Search keys (email, first_key, last_key) are lower-case and compared byte-wise,
-- so a prefix search is an index range scan on both engines.

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    first_key TEXT NOT NULL DEFAULT '',
    last_key TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    password_hash TEXT,
    temp_hash TEXT,
    temp_expires_at INTEGER,
    temp_used_at INTEGER,
    last_import_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX contacts_first_key ON contacts (first_key, id);
CREATE INDEX contacts_last_key ON contacts (last_key, id);

CREATE TABLE contact_attributes (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (contact_id, name)
);

CREATE TABLE contact_groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    visible_in_preference_center INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES contact_groups (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (group_id, contact_id)
);
CREATE INDEX group_members_contact ON group_members (contact_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('C', 'S')),
    contact_id INTEGER,
    system_user_id INTEGER,
    group_id INTEGER,
    params TEXT NOT NULL DEFAULT '{}',
    occurred_at INTEGER NOT NULL
);
CREATE INDEX events_contact ON events (contact_id, id);

CREATE TABLE imports (
    id INTEGER PRIMARY KEY,
    file_name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    total_rows INTEGER NOT NULL,
    rows_done INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    group_id INTEGER,
    fire_registered INTEGER NOT NULL DEFAULT 0,
    started_by INTEGER,
    started_at INTEGER NOT NULL,
    progressed_at INTEGER NOT NULL,
    finished_at INTEGER,
    error TEXT
);

CREATE TABLE import_rejections (
    import_id INTEGER NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line INTEGER NOT NULL,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
);
