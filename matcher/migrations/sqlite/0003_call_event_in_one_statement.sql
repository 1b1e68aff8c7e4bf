-- A call's event is recorded by one statement: the UPDATE of the call's row
-- that moves it to its new state also numbers the event (`last_seq`) and
-- carries its time and detail, and this trigger files the event. One
-- statement is atomic on its own and takes the write lock before it reads, so
-- concurrent appends to one call are numbered 1, 2, 3... without a gap. Keep
-- in step with the other engine's file.
ALTER TABLE calls ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN last_at_ms BIGINT;
ALTER TABLE calls ADD COLUMN last_detail TEXT;
UPDATE calls SET last_seq = COALESCE((SELECT MAX(e.seq) FROM call_events e WHERE e.call_id = calls.id), 0);

CREATE TRIGGER calls_file_event AFTER UPDATE OF last_seq ON calls
FOR EACH ROW WHEN NEW.last_seq <> OLD.last_seq
BEGIN
    INSERT INTO call_events (call_id, seq, state, at_ms, detail)
    VALUES (NEW.id, NEW.last_seq, NEW.state, NEW.last_at_ms, NEW.last_detail);
END;
