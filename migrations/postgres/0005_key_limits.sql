-- Optional allow-lists of an API key: the models it may call and the client addresses it may be
-- used from (JSON arrays; NULL = any).
ALTER TABLE api_keys ADD COLUMN models TEXT;
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT;
