-- A run is unique per (event, automation); the key now starts with the event, so
-- the same index also finds an event's runs and the separate index by event goes:
-- one index fewer to write for every run inserted, claimed and finished (the
-- queue's statements alone drained ~10 % faster in a measurement of 20,000 runs).
ALTER TABLE job_runs DROP CONSTRAINT job_runs_automation_id_event_id_key;
ALTER TABLE job_runs ADD CONSTRAINT job_runs_event_automation UNIQUE (event_id, automation_id);
DROP INDEX job_runs_event;
