-- The emails sent and what became of them, rolled up with the opens and clicks
-- (per message, automation and hour sent), kept by a trigger in the transaction
-- that writes the email or its fate; the statistics read only roll-ups.
ALTER TABLE engagement_hourly ADD COLUMN sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE engagement_hourly ADD COLUMN hard_bounces BIGINT NOT NULL DEFAULT 0;
ALTER TABLE engagement_hourly ADD COLUMN soft_bounces BIGINT NOT NULL DEFAULT 0;
ALTER TABLE engagement_hourly ADD COLUMN complaints BIGINT NOT NULL DEFAULT 0;
INSERT INTO engagement_hourly (message_id, automation_id, hour, sent, hard_bounces, soft_bounces, complaints)
SELECT COALESCE(message_id, 0), COALESCE(automation_id, 0), sent_at - sent_at % 3600000, COUNT(*),
       COUNT(*) FILTER (WHERE fate = 'hard_bounce'), COUNT(*) FILTER (WHERE fate = 'soft_bounce'),
       COUNT(*) FILTER (WHERE fate = 'complained')
FROM deliveries WHERE kind <> 'test'
GROUP BY 1, 2, 3
ON CONFLICT (message_id, automation_id, hour) DO UPDATE SET
    sent = engagement_hourly.sent + excluded.sent,
    hard_bounces = engagement_hourly.hard_bounces + excluded.hard_bounces,
    soft_bounces = engagement_hourly.soft_bounces + excluded.soft_bounces,
    complaints = engagement_hourly.complaints + excluded.complaints;
CREATE FUNCTION deliveries_rolled_up() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO engagement_hourly (message_id, automation_id, hour, sent, hard_bounces, soft_bounces, complaints)
        VALUES (COALESCE(NEW.message_id, 0), COALESCE(NEW.automation_id, 0), NEW.sent_at - NEW.sent_at % 3600000, 1,
                (NEW.fate = 'hard_bounce')::int, (NEW.fate = 'soft_bounce')::int, (NEW.fate = 'complained')::int)
        ON CONFLICT (message_id, automation_id, hour) DO UPDATE SET
            sent = engagement_hourly.sent + excluded.sent,
            hard_bounces = engagement_hourly.hard_bounces + excluded.hard_bounces,
            soft_bounces = engagement_hourly.soft_bounces + excluded.soft_bounces,
            complaints = engagement_hourly.complaints + excluded.complaints;
    ELSIF NEW.fate IS DISTINCT FROM OLD.fate THEN
        UPDATE engagement_hourly SET
            hard_bounces = hard_bounces + (NEW.fate = 'hard_bounce')::int - (OLD.fate = 'hard_bounce')::int,
            soft_bounces = soft_bounces + (NEW.fate = 'soft_bounce')::int - (OLD.fate = 'soft_bounce')::int,
            complaints = complaints + (NEW.fate = 'complained')::int - (OLD.fate = 'complained')::int
        WHERE message_id = COALESCE(NEW.message_id, 0) AND automation_id = COALESCE(NEW.automation_id, 0)
          AND hour = NEW.sent_at - NEW.sent_at % 3600000;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER deliveries_rolled_up AFTER INSERT OR UPDATE OF fate ON deliveries
FOR EACH ROW WHEN (NEW.kind <> 'test') EXECUTE FUNCTION deliveries_rolled_up();
