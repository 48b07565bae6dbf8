-- Async image/video tasks and stored files (inputs and archived results).
CREATE TABLE tasks (
    id                 TEXT PRIMARY KEY,
    user_id            INTEGER NOT NULL REFERENCES users(id),
    key_id             INTEGER NOT NULL,
    model              TEXT NOT NULL,
    category           TEXT NOT NULL,
    params             TEXT NOT NULL,
    inputs             TEXT NOT NULL,
    vendor             TEXT NOT NULL,
    channel_id         INTEGER,
    vendor_task_id     TEXT,
    status             TEXT NOT NULL,
    error              TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    submit_started_at  INTEGER,
    polls              INTEGER NOT NULL DEFAULT 0,
    next_poll_at       INTEGER NOT NULL,
    deadline_at        INTEGER NOT NULL,
    reservation_id     TEXT,
    credits            INTEGER NOT NULL,
    usage              TEXT,
    result             TEXT,
    idem_key           TEXT,
    callback_url       TEXT,
    callback_state     TEXT NOT NULL DEFAULT 'none',
    callback_attempts  INTEGER NOT NULL DEFAULT 0,
    callback_next_at   INTEGER,
    lease_owner        TEXT,
    lease_until        INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    finished_at        INTEGER
);
CREATE UNIQUE INDEX tasks_idem ON tasks(user_id, idem_key);
CREATE INDEX tasks_user ON tasks(user_id, created_at);
CREATE INDEX tasks_due ON tasks(status, next_poll_at);
CREATE INDEX tasks_callbacks ON tasks(callback_state, callback_next_at);

CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL,
    task_id     TEXT,
    kind        TEXT NOT NULL,
    mime        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    etag        TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX files_task ON files(task_id);
