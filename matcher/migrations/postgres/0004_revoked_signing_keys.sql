-- A signing key the operator revoked (`matcher key rotate --revoke`, `matcher
-- key revoke`) is never published or used again, and heartbeat replies name it
-- so that talkers drop it at once. A revoked key is kept (not deleted) so that
-- every matcher process on this store keeps naming it. Keep in step with the
-- other engine's file.
ALTER TABLE signing_keys ADD COLUMN revoked_at BIGINT;
