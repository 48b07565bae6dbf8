-- Async image/video tasks and stored files (inputs and archived results).
CREATE TABLE tasks (
    id                 TEXT PRIMARY KEY,
    user_id            BIGINT NOT NULL REFERENCES users(id),
    key_id             BIGINT NOT NULL,
    model              TEXT NOT NULL,
    category           TEXT NOT NULL,
    params             TEXT NOT NULL,
    inputs             TEXT NOT NULL,
    vendor             TEXT NOT NULL,
    channel_id         BIGINT,
    vendor_task_id     TEXT,
    status             TEXT NOT NULL,
    error              TEXT,
    attempts           BIGINT NOT NULL DEFAULT 0,
    submit_started_at  BIGINT,
    polls              BIGINT NOT NULL DEFAULT 0,
    next_poll_at       BIGINT NOT NULL,
    deadline_at        BIGINT NOT NULL,
    reservation_id     TEXT,
    credits            BIGINT NOT NULL,
    usage              TEXT,
    result             TEXT,
    idem_key           TEXT,
    callback_url       TEXT,
    callback_state     TEXT NOT NULL DEFAULT 'none',
    callback_attempts  BIGINT NOT NULL DEFAULT 0,
    callback_next_at   BIGINT,
    lease_owner        TEXT,
    lease_until        BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    finished_at        BIGINT
);
CREATE UNIQUE INDEX tasks_idem ON tasks(user_id, idem_key);
CREATE INDEX tasks_user ON tasks(user_id, created_at);
CREATE INDEX tasks_due ON tasks(status, next_poll_at);
CREATE INDEX tasks_callbacks ON tasks(callback_state, callback_next_at);

CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL,
    task_id     TEXT,
    kind        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    etag        TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX files_task ON files(task_id);
