-- Consent. A group may ask for double opt-in: subscribing to it makes a pending
-- membership (not a membership: nothing that reads group_members sees it) and
-- sends a confirmation email, whose link makes it a membership. How each
-- subscription, confirmation and withdrawal happened is kept, append-only.
ALTER TABLE contact_groups ADD COLUMN double_opt_in INTEGER NOT NULL DEFAULT 0;

-- A subscription waiting for its confirmation, and the confirmation email it
-- owes: due → sending (leased) → sent, or skipped (a suppressed address) or
-- failed. Gone when confirmed, withdrawn or expired.
CREATE TABLE pending_memberships (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES contact_groups (id) ON DELETE CASCADE,
    requested_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    method TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    email_state TEXT NOT NULL DEFAULT 'due',
    email_due_at INTEGER NOT NULL,
    lease_until INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at INTEGER,
    email_version INTEGER,
    email_note TEXT NOT NULL DEFAULT '',
    UNIQUE (contact_id, group_id)
);
CREATE INDEX pending_memberships_due ON pending_memberships (email_state, email_due_at);
CREATE INDEX pending_memberships_expiry ON pending_memberships (expires_at);
CREATE INDEX pending_memberships_group ON pending_memberships (group_id);

-- What happened to a contact's consent to a group, never changed: requested
-- (pending), confirmed (through the emailed link), subscribed (no confirmation
-- asked, or consent asserted), withdrawn, expired. The group's name is kept as it
-- was: a record outlives its group.
CREATE TABLE consent_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    group_id INTEGER,
    group_name TEXT NOT NULL,
    action TEXT NOT NULL,
    method TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    email_version INTEGER,
    at INTEGER NOT NULL
);
CREATE INDEX consent_records_contact ON consent_records (contact_id, at);

-- The system emails staff edited (the shipped ones are in the program): each save
-- is a new version, kept, so a consent record can name the text it was given.
CREATE TABLE system_email_versions (
    kind TEXT NOT NULL,
    version INTEGER NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    restored INTEGER NOT NULL DEFAULT 0,
    saved_at INTEGER NOT NULL,
    saved_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (kind, version)
);

-- An import into a group with double opt-in: whether staff asserted the
-- contacts' consent (who, for the consent records), and the confirmation emails
-- it asks for. Without the assertion it waits until staff have seen
-- how many confirmation emails it will send, and start it (waiting = 1; its
-- status stays running, the only one besides done and failed SQLite allows).
ALTER TABLE imports ADD COLUMN consent_asserted_by TEXT NOT NULL DEFAULT '';
ALTER TABLE imports ADD COLUMN confirmations_expected BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN waiting BIGINT NOT NULL DEFAULT 0;
