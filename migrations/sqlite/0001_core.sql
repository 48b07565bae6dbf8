-- Core schema: users, API keys, the ledger, reservations, chat usage and channels.
-- Times are unix milliseconds; flags are 0/1 integers (same shapes as the PostgreSQL schema).
CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    phone       TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL DEFAULT 'user',
    balance     INTEGER NOT NULL DEFAULT 0 CHECK (balance >= 0),
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    masked       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    amount          INTEGER NOT NULL,
    balance_after   INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    idem_key        TEXT NOT NULL UNIQUE,
    reservation_id  TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX ledger_user ON ledger(user_id, id);

CREATE TABLE reservations (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    amount      INTEGER NOT NULL,
    charged     INTEGER,
    status      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    model       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    closed_at   INTEGER
);
CREATE INDEX reservations_open ON reservations(status, created_at);

CREATE TABLE chat_usage (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            INTEGER NOT NULL,
    key_id             INTEGER NOT NULL,
    model              TEXT NOT NULL,
    channel_id         INTEGER,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    credits            INTEGER NOT NULL,
    usage_source       TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    latency_ms         INTEGER NOT NULL,
    created_at         INTEGER NOT NULL
);
CREATE INDEX chat_usage_user ON chat_usage(user_id, created_at);

CREATE TABLE channels (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL,
    vendor           TEXT NOT NULL,
    base_url         TEXT NOT NULL,
    api_key_enc      TEXT NOT NULL,
    models           TEXT NOT NULL,
    priority         INTEGER NOT NULL DEFAULT 0,
    weight           INTEGER NOT NULL DEFAULT 1,
    enabled          INTEGER NOT NULL DEFAULT 1,
    price_in         INTEGER,
    price_out        INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
