-- The emails sent and what became of them, rolled up with the opens and clicks
-- (per message, automation and hour sent), kept by triggers in the transaction
-- that writes the email or its fate; the statistics read only roll-ups.
ALTER TABLE engagement_hourly ADD COLUMN sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE engagement_hourly ADD COLUMN hard_bounces BIGINT NOT NULL DEFAULT 0;
ALTER TABLE engagement_hourly ADD COLUMN soft_bounces BIGINT NOT NULL DEFAULT 0;
ALTER TABLE engagement_hourly ADD COLUMN complaints BIGINT NOT NULL DEFAULT 0;
INSERT INTO engagement_hourly (message_id, automation_id, hour, sent, hard_bounces, soft_bounces, complaints)
SELECT COALESCE(message_id, 0), COALESCE(automation_id, 0), sent_at - sent_at % 3600000, COUNT(*),
       SUM(fate = 'hard_bounce'), SUM(fate = 'soft_bounce'), SUM(fate = 'complained')
FROM deliveries WHERE kind <> 'test'
GROUP BY COALESCE(message_id, 0), COALESCE(automation_id, 0), sent_at - sent_at % 3600000
ON CONFLICT (message_id, automation_id, hour) DO UPDATE SET
    sent = engagement_hourly.sent + excluded.sent,
    hard_bounces = engagement_hourly.hard_bounces + excluded.hard_bounces,
    soft_bounces = engagement_hourly.soft_bounces + excluded.soft_bounces,
    complaints = engagement_hourly.complaints + excluded.complaints;
CREATE TRIGGER deliveries_sent_rolled_up AFTER INSERT ON deliveries WHEN NEW.kind <> 'test'
BEGIN
    INSERT INTO engagement_hourly (message_id, automation_id, hour, sent, hard_bounces, soft_bounces, complaints)
    VALUES (COALESCE(NEW.message_id, 0), COALESCE(NEW.automation_id, 0), NEW.sent_at - NEW.sent_at % 3600000, 1,
            NEW.fate = 'hard_bounce', NEW.fate = 'soft_bounce', NEW.fate = 'complained')
    ON CONFLICT (message_id, automation_id, hour) DO UPDATE SET
        sent = engagement_hourly.sent + excluded.sent,
        hard_bounces = engagement_hourly.hard_bounces + excluded.hard_bounces,
        soft_bounces = engagement_hourly.soft_bounces + excluded.soft_bounces,
        complaints = engagement_hourly.complaints + excluded.complaints;
END;
CREATE TRIGGER deliveries_fate_rolled_up AFTER UPDATE OF fate ON deliveries
WHEN NEW.kind <> 'test' AND NEW.fate <> OLD.fate
BEGIN
    UPDATE engagement_hourly SET
        hard_bounces = hard_bounces + (NEW.fate = 'hard_bounce') - (OLD.fate = 'hard_bounce'),
        soft_bounces = soft_bounces + (NEW.fate = 'soft_bounce') - (OLD.fate = 'soft_bounce'),
        complaints = complaints + (NEW.fate = 'complained') - (OLD.fate = 'complained')
    WHERE message_id = COALESCE(NEW.message_id, 0) AND automation_id = COALESCE(NEW.automation_id, 0)
      AND hour = NEW.sent_at - NEW.sent_at % 3600000;
END;
