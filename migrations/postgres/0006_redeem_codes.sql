-- Redemption codes (兑换码): created in batches by an admin, each redeemed once by one user.
-- Only the SHA-256 of a code is stored.
CREATE TABLE redeem_codes (
    id           BIGSERIAL PRIMARY KEY,
    code_hash    TEXT NOT NULL UNIQUE,
    credits      BIGINT NOT NULL CHECK (credits > 0),
    batch        TEXT NOT NULL,
    note         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    redeemed_by  BIGINT REFERENCES users(id),
    redeemed_at  BIGINT
);
