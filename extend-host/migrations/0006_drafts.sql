-- A webtask's draft: saved and runnable by its container's tokens, not what
-- runs at the webtask's URL or what discovery finds, until deployed.
CREATE TABLE webtask_drafts (
    container TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    code      TEXT    NOT NULL,
    meta      TEXT    NOT NULL,  -- JSON object of strings
    secrets   BLOB,              -- sealed like the webtask's; NULL: use the live ones
    saved_by  TEXT    NOT NULL,
    saved_at  INTEGER NOT NULL,
    PRIMARY KEY (container, name)
) WITHOUT ROWID;
