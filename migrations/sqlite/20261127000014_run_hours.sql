-- Finished runs counted per hour and status, kept by the database itself as runs
-- finish, are put back in the queue or are pruned: the dashboard reads at most
-- 168 hours of counts instead of every run finished in seven days (rows the
-- scheduler is updating at the same time). Always equal to
--   SELECT finished_at / 3600000, status, COUNT(*) FROM job_runs
--   WHERE finished_at IS NOT NULL GROUP BY 1, 2
-- apart from rows whose count fell to 0 (retention removes those).
CREATE TABLE run_hours (
    hour INTEGER NOT NULL,
    status TEXT NOT NULL,
    runs INTEGER NOT NULL,
    PRIMARY KEY (hour, status)
) WITHOUT ROWID;

INSERT INTO run_hours (hour, status, runs)
SELECT finished_at / 3600000, status, COUNT(*) FROM job_runs
WHERE finished_at IS NOT NULL GROUP BY finished_at / 3600000, status;

CREATE TRIGGER run_hours_insert AFTER INSERT ON job_runs
WHEN NEW.finished_at IS NOT NULL
BEGIN
    INSERT INTO run_hours (hour, status, runs) VALUES (NEW.finished_at / 3600000, NEW.status, 1)
    ON CONFLICT (hour, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_hours_update_old AFTER UPDATE OF status, finished_at ON job_runs
WHEN OLD.finished_at IS NOT NULL AND (OLD.finished_at IS NOT NEW.finished_at OR OLD.status IS NOT NEW.status)
BEGIN
    UPDATE run_hours SET runs = runs - 1 WHERE hour = OLD.finished_at / 3600000 AND status = OLD.status;
END;

CREATE TRIGGER run_hours_update_new AFTER UPDATE OF status, finished_at ON job_runs
WHEN NEW.finished_at IS NOT NULL AND (OLD.finished_at IS NOT NEW.finished_at OR OLD.status IS NOT NEW.status)
BEGIN
    INSERT INTO run_hours (hour, status, runs) VALUES (NEW.finished_at / 3600000, NEW.status, 1)
    ON CONFLICT (hour, status) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER run_hours_delete AFTER DELETE ON job_runs
WHEN OLD.finished_at IS NOT NULL
BEGIN
    UPDATE run_hours SET runs = runs - 1 WHERE hour = OLD.finished_at / 3600000 AND status = OLD.status;
END;
