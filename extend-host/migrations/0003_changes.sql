-- The change log: one row per webtask write, in commit order, so that a
-- `GET /api/changes` client that reconnects with `Last-Event-ID` gets what
-- it missed. Old rows are pruned; a client older than the oldest row starts over.
CREATE TABLE changes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    container TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    deleted   INTEGER NOT NULL,
    at        INTEGER NOT NULL  -- Unix seconds
);
CREATE INDEX changes_by_container ON changes (container, id);
