//! The statements the SQLite and PostgreSQL stores share, written once.
//!
//! Each is written in the dialect both accept: `$N` placeholders (SQLite
//! reads `$1` as a named parameter numbered by its first appearance, so
//! each statement names its parameters in order: a test checks it), no
//! dialect-specific types or functions. What differs (upserts, JSON
//! operators, column types) stays in each store's own files, and so does a
//! statement whose parameters cannot appear in order (a rename sets the new
//! name, `$3`, before the `WHERE` names the old one, `$2`): SQLite would
//! bind it wrongly.

/// Publishes a catalog as the next version. Parameters: document, published at. Returns the version.
pub(crate) const CATALOG_PUBLISH: &str = "INSERT INTO catalogs (version, document, published_at) SELECT COALESCE(MAX(version), 0) + 1, $1, $2 FROM catalogs RETURNING version";

/// Drops the catalogs older than the two kept. Parameter: the oldest version kept.
pub(crate) const CATALOGS_BEFORE_DELETE: &str = "DELETE FROM catalogs WHERE version < $1";

/// The newest catalog and the one before it (what compatibility checks compare).
pub(crate) const CATALOGS_LAST_TWO: &str =
    "SELECT version, document, published_at FROM catalogs ORDER BY version DESC LIMIT 2";

/// The first and last change ids the change log still holds.
pub(crate) const CHANGES_RANGE: &str = "SELECT MIN(id), MAX(id) FROM changes";

/// Drops a webtask's recorded inputs up to a sequence number. Parameters: container, name, last seq dropped.
pub(crate) const RECORDINGS_TRIM: &str =
    "DELETE FROM recorded_inputs WHERE container = $1 AND name = $2 AND seq <= $3";

/// A webtask's recorded inputs, newest first. Parameters: container, name.
pub(crate) const RECORDINGS_NEWEST_FIRST: &str = "SELECT recorded_at, input FROM recorded_inputs WHERE container = $1 AND name = $2 ORDER BY seq DESC";

/// Removes a webtask. Parameters: container, name.
pub(crate) const WEBTASK_DELETE: &str = "DELETE FROM webtasks WHERE container = $1 AND name = $2";

/// Removes a webtask's recorded inputs. Parameters: container, name.
pub(crate) const RECORDINGS_DELETE: &str =
    "DELETE FROM recorded_inputs WHERE container = $1 AND name = $2";

/// Removes the versions under a renamed webtask's old and new names. Parameters: container, old name, new name.
pub(crate) const VERSIONS_DELETE_BOTH_NAMES: &str =
    "DELETE FROM webtask_versions WHERE container = $1 AND name IN ($2, $3)";

/// Removes the recorded inputs under a renamed webtask's old and new names. Parameters: container, old name, new name.
pub(crate) const RECORDINGS_DELETE_BOTH_NAMES: &str =
    "DELETE FROM recorded_inputs WHERE container = $1 AND name IN ($2, $3)";

/// Every revoked token id.
pub(crate) const REVOKED_ALL: &str = "SELECT jti FROM revoked_tokens";

/// Keeps a webtask's last versions. Parameters: container, name, how many are kept beyond the newest.
pub(crate) const VERSIONS_PRUNE: &str = "DELETE FROM webtask_versions WHERE container = $1 AND name = $2 AND version <= (SELECT MAX(version) FROM webtask_versions WHERE container = $1 AND name = $2) - $3";

/// Removes a webtask's draft. Parameters: container, name.
pub(crate) const DRAFT_DELETE: &str =
    "DELETE FROM webtask_drafts WHERE container = $1 AND name = $2";

/// A container's extra egress hosts (JSON array). Parameters: container.
pub(crate) const CONTAINER_EGRESS: &str = "SELECT allow FROM container_egress WHERE container = $1";

/// Sets a container's extra egress hosts. Parameters: container, JSON array, time.
pub(crate) const CONTAINER_EGRESS_SET: &str = "INSERT INTO container_egress (container, allow, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (container) DO UPDATE SET allow = excluded.allow, updated_at = excluded.updated_at";

/// Removes a container's extra egress hosts. Parameters: container.
pub(crate) const CONTAINER_EGRESS_DELETE: &str =
    "DELETE FROM container_egress WHERE container = $1";

/// Every shared statement, for the test that prepares each on both dialects.
#[cfg(test)]
pub(crate) const ALL: &[&str] = &[
    CATALOG_PUBLISH,
    CATALOGS_BEFORE_DELETE,
    CATALOGS_LAST_TWO,
    CHANGES_RANGE,
    RECORDINGS_TRIM,
    RECORDINGS_NEWEST_FIRST,
    WEBTASK_DELETE,
    RECORDINGS_DELETE,
    VERSIONS_DELETE_BOTH_NAMES,
    RECORDINGS_DELETE_BOTH_NAMES,
    REVOKED_ALL,
    VERSIONS_PRUNE,
    DRAFT_DELETE,
    CONTAINER_EGRESS,
    CONTAINER_EGRESS_SET,
    CONTAINER_EGRESS_DELETE,
];
