-- Recharge orders (充值订单). `id` is the out_trade_no sent to Alipay. Amounts in fen (分),
-- credits fixed at creation. status: PENDING → SUCCEEDED (credited once, ledger idem key
-- `recharge:<id>`) or FAILED (closed unpaid / expired).
CREATE TABLE recharge_orders (
    id            TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    provider      TEXT NOT NULL,
    amount_fen    INTEGER NOT NULL CHECK (amount_fen > 0),
    credits       INTEGER NOT NULL CHECK (credits > 0),
    status        TEXT NOT NULL,
    trade_no      TEXT,
    qr_code       TEXT,
    failure       TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    paid_at       INTEGER,
    checked_at    INTEGER
);
CREATE INDEX recharge_orders_user ON recharge_orders(user_id, created_at);
CREATE INDEX recharge_orders_open ON recharge_orders(status, created_at);
