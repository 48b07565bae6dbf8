-- Core schema: users, API keys, the ledger, reservations, chat usage and channels.
-- Times are unix milliseconds; flags are 0/1 integers (same shapes as the SQLite schema).
CREATE TABLE users (
    id          BIGSERIAL PRIMARY KEY,
    phone       TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL DEFAULT 'user',
    balance     BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    disabled    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    masked       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE ledger (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users(id),
    amount          BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL,
    kind            TEXT NOT NULL,
    reason          TEXT NOT NULL,
    idem_key        TEXT NOT NULL UNIQUE,
    reservation_id  TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX ledger_user ON ledger(user_id, id);

CREATE TABLE reservations (
    id          TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    amount      BIGINT NOT NULL,
    charged     BIGINT,
    status      TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    model       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    closed_at   BIGINT
);
CREATE INDEX reservations_open ON reservations(status, created_at);

CREATE TABLE chat_usage (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            BIGINT NOT NULL,
    key_id             BIGINT NOT NULL,
    model              TEXT NOT NULL,
    channel_id         BIGINT,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    credits            BIGINT NOT NULL,
    usage_source       TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    latency_ms         BIGINT NOT NULL,
    created_at         BIGINT NOT NULL
);
CREATE INDEX chat_usage_user ON chat_usage(user_id, created_at);

CREATE TABLE channels (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT NOT NULL,
    vendor           TEXT NOT NULL,
    base_url         TEXT NOT NULL,
    api_key_enc      TEXT NOT NULL,
    models           TEXT NOT NULL,
    priority         BIGINT NOT NULL DEFAULT 0,
    weight           BIGINT NOT NULL DEFAULT 1,
    enabled          BIGINT NOT NULL DEFAULT 1,
    price_in         BIGINT,
    price_out        BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
