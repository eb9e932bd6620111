-- What an import set going, for its report: the contacts new to its group, the
-- Registered to System (C) events it fired, and the runs those started per
-- automation.
ALTER TABLE imports ADD COLUMN joined BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN events_fired BIGINT NOT NULL DEFAULT 0;
CREATE TABLE import_runs (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    automation_id BIGINT NOT NULL,
    runs BIGINT NOT NULL,
    PRIMARY KEY (import_id, automation_id)
);
