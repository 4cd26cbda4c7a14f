-- The last run inputs of webtasks whose point opted in to recording (the
-- catalog's `record_inputs`), sealed like secrets, so that a draft can be
-- tried on real traffic before it is deployed.
CREATE TABLE recorded_inputs (
    container   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    input       BLOB    NOT NULL,
    PRIMARY KEY (container, name, seq)
) WITHOUT ROWID;
