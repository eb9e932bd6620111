-- Execution hours of an automation's time frame, in minutes after 00:00 in its
-- zone: a job due outside them waits for the next start of the window. 0–1440 is
-- all day (what every automation had before).
ALTER TABLE automations ADD COLUMN hours_from INTEGER NOT NULL DEFAULT 0 CHECK (hours_from >= 0 AND hours_from < 1440);
ALTER TABLE automations ADD COLUMN hours_to INTEGER NOT NULL DEFAULT 1440 CHECK (hours_to > 0 AND hours_to <= 1440);
