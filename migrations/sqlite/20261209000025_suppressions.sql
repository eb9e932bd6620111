-- The suppression list (the system blacklist): addresses Herald sends no prepared
-- message to, by address (lower case), whatever becomes of the contact.
CREATE TABLE suppressions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    address TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX suppressions_created ON suppressions (created_at, id);
