-- A webtask's draft (see the SQLite migration 0006).
CREATE TABLE webtask_drafts (
    container TEXT   NOT NULL,
    name      TEXT   NOT NULL,
    code      TEXT   NOT NULL,
    meta      JSONB  NOT NULL,
    secrets   BYTEA,
    saved_by  TEXT   NOT NULL,
    saved_at  BIGINT NOT NULL,
    PRIMARY KEY (container, name)
);
