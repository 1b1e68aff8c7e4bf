-- A talker is either an enrolled splitdial talker agent (`agent`: it has a key,
-- sends heartbeats and proves itself to the dialer) or a third-party SIP phone
-- that an admin added (`sip_phone`: no key; the matcher's OPTIONS probes stand
-- in for heartbeats, and the call controller hands the call off once the
-- phone's transfer succeeded). Keep in step with the other engine's file.
ALTER TABLE talkers ADD COLUMN software TEXT NOT NULL DEFAULT 'agent';
