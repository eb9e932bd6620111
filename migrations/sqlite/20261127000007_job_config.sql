-- A job's own Define Job fields, as its parser made them (JSON); the target stays
-- in job_target.

ALTER TABLE automations ADD COLUMN job_config TEXT NOT NULL DEFAULT 'null';
