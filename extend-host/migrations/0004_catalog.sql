-- The platform's published catalog of extension points (JSON), the current
-- version and the one before it.
CREATE TABLE catalogs (
    version      INTEGER PRIMARY KEY,
    document     TEXT    NOT NULL,
    published_at INTEGER NOT NULL  -- Unix seconds
);
