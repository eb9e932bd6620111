-- Finished runs counted per hour and status, kept by the database itself as runs
-- finish, are put back in the queue or are pruned: the dashboard reads at most
-- 168 hours of counts instead of every run finished in seven days (rows the
-- scheduler is updating at the same time). Always equal to
--   SELECT finished_at / 3600000, status, COUNT(*) FROM job_runs
--   WHERE finished_at IS NOT NULL GROUP BY 1, 2
-- apart from rows whose count fell to 0 (retention removes those).
CREATE TABLE run_hours (
    hour BIGINT NOT NULL,
    status TEXT NOT NULL,
    runs BIGINT NOT NULL,
    PRIMARY KEY (hour, status)
);

INSERT INTO run_hours (hour, status, runs)
SELECT finished_at / 3600000, status, COUNT(*) FROM job_runs
WHERE finished_at IS NOT NULL GROUP BY finished_at / 3600000, status;

-- A run is rarely inserted finished (one that was never due to run): counted row
-- by row, and the WHEN keeps every other insert — the event API's hot path — free
-- of any trigger work.
CREATE FUNCTION run_hours_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_hours (hour, status, runs) VALUES (NEW.finished_at / 3600000, NEW.status, 1)
    ON CONFLICT (hour, status) DO UPDATE SET runs = run_hours.runs + 1;
    RETURN NULL;
END $$;

-- Updates and deletes are counted once per statement, not per row: a completion of
-- 128 runs is one upsert of the hour's row. Rows are upserted in key order so two
-- statements cannot deadlock.
CREATE FUNCTION run_hours_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_hours (hour, status, runs)
    SELECT h, s, SUM(n) FROM (
        SELECT finished_at / 3600000 AS h, status AS s, -1 AS n FROM old_runs WHERE finished_at IS NOT NULL
        UNION ALL
        SELECT finished_at / 3600000, status, 1 FROM new_runs WHERE finished_at IS NOT NULL
    ) c
    GROUP BY h, s HAVING SUM(n) <> 0 ORDER BY h, s
    ON CONFLICT (hour, status) DO UPDATE SET runs = run_hours.runs + EXCLUDED.runs;
    RETURN NULL;
END $$;

CREATE FUNCTION run_hours_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO run_hours (hour, status, runs)
    SELECT finished_at / 3600000 AS h, status, -COUNT(*) FROM old_runs WHERE finished_at IS NOT NULL
    GROUP BY h, status ORDER BY h, status
    ON CONFLICT (hour, status) DO UPDATE SET runs = run_hours.runs + EXCLUDED.runs;
    RETURN NULL;
END $$;

CREATE TRIGGER run_hours_insert AFTER INSERT ON job_runs
FOR EACH ROW WHEN (NEW.finished_at IS NOT NULL) EXECUTE FUNCTION run_hours_insert();
CREATE TRIGGER run_hours_update AFTER UPDATE ON job_runs
REFERENCING OLD TABLE AS old_runs NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION run_hours_update();
CREATE TRIGGER run_hours_delete AFTER DELETE ON job_runs
REFERENCING OLD TABLE AS old_runs FOR EACH STATEMENT EXECUTE FUNCTION run_hours_delete();
