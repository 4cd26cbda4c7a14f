-- Named webtasks. `secrets` is sealed with the host's encryption key
-- (ChaCha20-Poly1305, nonce || ciphertext); nothing else holds a secret.
CREATE TABLE webtasks (
    container  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    code       TEXT    NOT NULL,
    secrets    BLOB    NOT NULL,
    meta       TEXT    NOT NULL,  -- JSON object of strings
    token      TEXT    NOT NULL,  -- the webtask token handed to clients
    created_at INTEGER NOT NULL,  -- Unix seconds
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (container, name)
) WITHOUT ROWID;

-- Revoked token ids; a token is refused when its own `jti` or any id in its
-- issuance chain (`ca`) is listed here.
CREATE TABLE revoked_tokens (
    jti        TEXT    PRIMARY KEY,
    revoked_at INTEGER NOT NULL
) WITHOUT ROWID;
