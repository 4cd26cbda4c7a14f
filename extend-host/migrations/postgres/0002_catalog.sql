-- The platform's published catalog of extension points (JSON), the current
-- version and the one before it.
CREATE TABLE catalogs (
    version      BIGINT PRIMARY KEY,
    document     TEXT   NOT NULL,
    published_at BIGINT NOT NULL
);
