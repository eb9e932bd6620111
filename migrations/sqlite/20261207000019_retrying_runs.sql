-- Runs waiting to be tried again after a failed attempt (a mail server that is
-- down): the dashboard counts them and the overview adds them to its errors. Only
-- such rows are in the index, so the queue's other writes do not touch it.
CREATE INDEX job_runs_retrying ON job_runs (automation_id) WHERE status = 'pending' AND last_error IS NOT NULL;
