-- Each live write of a webtask, newest kept (see the SQLite migration 0005).
CREATE TABLE webtask_versions (
    container   TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    code        TEXT   NOT NULL,
    meta        JSONB  NOT NULL,
    secrets     JSONB  NOT NULL,
    deployed_by TEXT   NOT NULL,
    deployed_at BIGINT NOT NULL,
    PRIMARY KEY (container, name, version),
    FOREIGN KEY (container, name) REFERENCES webtasks (container, name) ON DELETE CASCADE
);
