//! The keys all nodes share, kept in the database sealed with the
//! key-encryption key (KEK).
//!
//! Rotation: the row names its KEK by fingerprint (`kek_id`). Rotating the
//! KEK means opening the row with the old key and sealing it again with the
//! new one under the setup lock, then giving nodes the new key; the signing
//! and sealing keys inside do not change, so tokens and stored secrets stay
//! valid. (Rotating those inner keys is a different story: every webtask's
//! secrets would be re-sealed and tokens re-issued.)

use super::conn::{db, now};
use crate::crypto::{KeyEncryptionKey, Keys};
use crate::store::StoreError;
use deadpool_postgres::Object;

/// What the nodes of one database share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) keys: Keys,
    pub(crate) master_token: String,
    /// Whether this call made them (the first start of the database).
    pub(crate) created: bool,
}

/// Reads the shared keys, if the database has them.
pub(super) async fn load(
    conn: &Object,
    kek: &KeyEncryptionKey,
) -> Result<Option<Shared>, StoreError> {
    let found = conn
        .query_opt("SELECT kek_id, sealed FROM host_keys WHERE id = 1", &[])
        .await
        .map_err(db)?;
    if let Some(row) = found {
        let (kek_id, sealed): (String, Vec<u8>) = (row.get(0), row.get(1));
        let plain = kek.open(&sealed).ok_or_else(|| {
            StoreError::Corrupt(if kek_id == kek.id() {
                "the stored keys do not open with the key-encryption key (they were altered)"
                    .to_owned()
            } else {
                format!(
                    "the keys in this database were sealed with the key-encryption key {kek_id}, \
                     not the one given ({}); give every node the same --key-file or EXTEND_KEY",
                    kek.id()
                )
            })
        })?;
        let v: serde_json::Value = serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Corrupt(format!("the stored keys: {e}")))?;
        let keys = Keys::from_file(&v["keys"].to_string())
            .map_err(|e| StoreError::Corrupt(format!("the stored keys: {e}")))?;
        let master_token = v["master"]
            .as_str()
            .ok_or_else(|| StoreError::Corrupt("the stored keys lack the master token".into()))?
            .to_owned();
        return Ok(Some(Shared {
            keys,
            master_token,
            created: false,
        }));
    }
    Ok(None)
}

/// Reads the shared keys, or makes and stores them when the database has
/// none. Runs under the setup lock, so only one node makes them.
pub(super) async fn load_or_create(
    conn: &Object,
    kek: &KeyEncryptionKey,
    mint_master: impl FnOnce(&Keys) -> String,
) -> Result<Shared, StoreError> {
    if let Some(shared) = load(conn, kek).await? {
        return Ok(shared);
    }
    let keys = Keys::generate();
    let master_token = mint_master(&keys);
    let keys_json: serde_json::Value =
        serde_json::from_str(&keys.to_file()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let plain = serde_json::json!({ "keys": keys_json, "master": master_token }).to_string();
    conn.execute(
        "INSERT INTO host_keys (id, kek_id, sealed, created_at) VALUES (1, $1, $2, $3)",
        &[&kek.id(), &kek.seal(plain.as_bytes()), &now()],
    )
    .await
    .map_err(db)?;
    Ok(Shared {
        keys,
        master_token,
        created: true,
    })
}
