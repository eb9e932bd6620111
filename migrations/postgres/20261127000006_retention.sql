-- Retention: finished runs, old events and old audit entries are pruned in small
-- batches; these indexes find them without scanning the tables.

CREATE INDEX job_runs_finished ON job_runs (finished_at);
CREATE INDEX job_runs_event ON job_runs (event_id);
CREATE INDEX events_occurred ON events (occurred_at);
