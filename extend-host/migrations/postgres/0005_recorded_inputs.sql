-- Recorded run inputs (see the SQLite migration 0007).
CREATE TABLE recorded_inputs (
    container   TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    seq         BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    input       BYTEA  NOT NULL,
    PRIMARY KEY (container, name, seq)
);
