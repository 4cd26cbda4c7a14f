-- Named webtasks. `secrets` is sealed with the hosts' encryption key
-- (ChaCha20-Poly1305, nonce || ciphertext); nothing else holds a secret.
CREATE TABLE webtasks (
    container  TEXT   NOT NULL,
    name       TEXT   NOT NULL,
    code       TEXT   NOT NULL,
    secrets    BYTEA  NOT NULL,
    meta       JSONB  NOT NULL,  -- object of strings
    token      TEXT   NOT NULL,  -- the webtask token handed to clients
    created_at BIGINT NOT NULL,  -- Unix seconds
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (container, name)
);
-- `meta=key:value` filters are one containment test (`meta @> filter`).
CREATE INDEX webtasks_meta ON webtasks USING GIN (meta jsonb_path_ops);

-- Revoked token ids; a token is refused when its own `jti` or any id in its
-- issuance chain (`ca`) is listed here.
CREATE TABLE revoked_tokens (
    jti        TEXT   PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);

-- The change log (see the SQLite migration 0003). Ids are taken under a
-- transaction-level advisory lock, so they increase in commit order.
CREATE TABLE changes (
    id        BIGSERIAL PRIMARY KEY,
    container TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    deleted   BOOLEAN NOT NULL,
    at        BIGINT  NOT NULL
);
CREATE INDEX changes_by_container ON changes (container, id);

-- The keys every node shares: the JWT signing key, the secrets' sealing key
-- and the master token, sealed together with the key-encryption key (KEK)
-- the nodes are given. `kek_id` names that KEK (a fingerprint, not the key),
-- so a node given another one is told so.
CREATE TABLE host_keys (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    kek_id     TEXT     NOT NULL,
    sealed     BYTEA    NOT NULL,
    created_at BIGINT   NOT NULL
);
