-- One row per metadata entry, so that `meta=key:value` filters are index
-- lookups instead of a JSON scan of every webtask of the container.
CREATE TABLE webtask_meta (
    container TEXT NOT NULL,
    name      TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (container, name, key),
    FOREIGN KEY (container, name) REFERENCES webtasks (container, name) ON DELETE CASCADE
);
CREATE INDEX webtask_meta_by_value ON webtask_meta (container, key, value);
INSERT INTO webtask_meta (container, name, key, value)
    SELECT w.container, w.name, j.key, j.value FROM webtasks w, json_each(w.meta) j;
