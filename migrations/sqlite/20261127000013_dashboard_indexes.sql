-- The dashboard counts active automations that have not ended: read from this
-- index alone rather than from every automation.
CREATE INDEX automations_active_end ON automations (state, end_at);

-- The dashboard's chart and 24-hour counts read finished runs by time and status:
-- with the status in the index they need not visit each run.
DROP INDEX job_runs_finished;
CREATE INDEX job_runs_finished ON job_runs (finished_at, status) WHERE finished_at IS NOT NULL;
