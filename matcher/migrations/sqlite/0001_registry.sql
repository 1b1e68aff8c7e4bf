-- The matcher's registry and call records (SQLite). Keep in step with
-- ../postgres/0001_registry.sql: the same tables, columns and meanings.
-- Booleans are 0/1 integers and times Unix seconds (or ms where named so), so
-- that one set of portable queries serves both engines.

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE enrollment_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

CREATE TABLE servers (
    domain TEXT PRIMARY KEY,
    proxy TEXT NOT NULL,
    transport TEXT NOT NULL,
    cost BIGINT NOT NULL,
    trust TEXT NOT NULL
);

CREATE TABLE talkers (
    id TEXT PRIMARY KEY,
    owner BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    media TEXT NOT NULL,
    public_key TEXT NOT NULL,
    instance TEXT,
    credential_hash TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'idle',
    last_seen BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX talkers_by_owner ON talkers(owner);

CREATE TABLE accounts (
    talker_id TEXT NOT NULL REFERENCES talkers(id) ON DELETE CASCADE,
    aor TEXT NOT NULL,
    server TEXT NOT NULL REFERENCES servers(domain),
    position BIGINT NOT NULL,
    registered BIGINT NOT NULL DEFAULT 0,
    gruu TEXT,
    PRIMARY KEY (talker_id, aor)
);
CREATE INDEX accounts_by_aor ON accounts(aor);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE CASCADE,
    aor TEXT,
    server TEXT REFERENCES servers(domain),
    UNIQUE (owner, name)
);
CREATE INDEX contacts_by_user ON contacts(user_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    seed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    caller BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    contact_id BIGINT NOT NULL,
    route TEXT NOT NULL,
    media TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    owner_instance TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX calls_by_caller ON calls(caller);
CREATE INDEX calls_by_state ON calls(state);

CREATE TABLE call_events (
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
