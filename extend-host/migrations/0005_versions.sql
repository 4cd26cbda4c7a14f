-- Each live write of a webtask, newest kept: code, meta, which secrets it
-- had (names only: values are not versioned), who wrote it and when.
CREATE TABLE webtask_versions (
    container   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    code        TEXT    NOT NULL,
    meta        TEXT    NOT NULL,  -- JSON object of strings
    secrets     TEXT    NOT NULL,  -- JSON array of names
    deployed_by TEXT    NOT NULL,
    deployed_at INTEGER NOT NULL,
    PRIMARY KEY (container, name, version),
    FOREIGN KEY (container, name) REFERENCES webtasks (container, name) ON DELETE CASCADE
);
