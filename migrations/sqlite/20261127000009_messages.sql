-- Prepared messages: written by staff, personalised at send time. And a contact's
-- global opt-out from prepared messages (set by an unsubscribe link without a
-- group, cleared only by the contact in the preference center).

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

ALTER TABLE contacts ADD COLUMN opted_out_at INTEGER;
