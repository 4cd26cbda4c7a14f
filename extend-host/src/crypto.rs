//! The host's keys: JWT signing (HMAC-SHA256) and secrets at rest (ChaCha20-Poly1305).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Random bytes from the OS. The OS generator failing is not something a host
/// can work around, so it is the one place this crate panics.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random number generator failed");
    b
}

/// `N` random bytes as lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> String {
    random::<N>().iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys of one host.
#[derive(Clone)]
pub(crate) struct Keys {
    /// Key id put in every JWT header (`kid`), as the original did.
    pub(crate) kid: String,
    signing: [u8; 32],
    cipher: ChaCha20Poly1305,
    encryption: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub(crate) fn generate() -> Self {
        Self::from_parts(random_hex::<4>(), random(), random())
    }

    fn from_parts(kid: String, signing: [u8; 32], encryption: [u8; 32]) -> Self {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&encryption));
        Keys {
            kid,
            signing,
            cipher,
            encryption,
        }
    }

    /// The key file's content: one JSON object, base64 keys.
    pub(crate) fn to_file(&self) -> String {
        serde_json::json!({
            "kid": self.kid,
            "signing": STANDARD.encode(self.signing),
            "encryption": STANDARD.encode(self.encryption),
        })
        .to_string()
    }

    pub(crate) fn from_file(text: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let key = |name: &str| -> Result<[u8; 32], String> {
            let s = v[name]
                .as_str()
                .ok_or_else(|| format!("`{name}` is missing"))?;
            let bytes = STANDARD.decode(s).map_err(|e| format!("`{name}`: {e}"))?;
            bytes
                .try_into()
                .map_err(|_| format!("`{name}` is not 32 bytes"))
        };
        let kid = v["kid"].as_str().ok_or("`kid` is missing")?.to_owned();
        Ok(Self::from_parts(kid, key("signing")?, key("encryption")?))
    }

    /// HMAC-SHA256 of `data`, base64url.
    pub(crate) fn sign(&self, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(data).finalize().into_bytes())
    }

    /// Constant-time check of a signature made by [`Keys::sign`].
    pub(crate) fn verify(&self, data: &[u8], signature: &[u8]) -> bool {
        self.mac(data).verify_slice(signature).is_ok()
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.signing)
            .expect("HMAC takes any key length");
        mac.update(data);
        mac
    }

    /// Encrypts `plain` with a fresh random nonce: `nonce || ciphertext+tag`.
    pub(crate) fn seal(&self, plain: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher, plain)
    }

    /// Decrypts what [`Keys::seal`] made; `None` if it was not made with this key or was altered.
    pub(crate) fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, sealed)
    }
}

/// The key-encryption key (KEK) of hosts that share a database: it seals the
/// signing and sealing keys they keep in the database, so that a copy of the
/// database alone opens no secret and forges no token.
///
/// 32 random bytes, written as base64 or hex (`extend-host new-key` makes
/// one). Every node of a cluster is given the same one with `--key-file` or
/// `EXTEND_KEY`.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    cipher: ChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl KeyEncryptionKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self::from_bytes(random())
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        use sha2::Digest as _;
        let digest = Sha256::digest(key);
        KeyEncryptionKey {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            id: digest[..4].iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Parses a key written as base64 (44 characters) or hex (64
    /// characters); surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|e| e.to_string())?
        } else {
            STANDARD.decode(text).map_err(|_| {
                "a key-encryption key is 32 bytes written as base64 or hex".to_owned()
            })?
        };
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "a key-encryption key is 32 bytes; this one is {} (make one with `extend-host new-key`)",
                b.len()
            )
        })?;
        Ok(Self::from_bytes(key))
    }

    /// Reads a key file (see [`KeyEncryptionKey::parse`]).
    pub fn from_file(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the key file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A new random key as base64, the form `extend-host new-key` writes.
    pub fn generate_text() -> String {
        STANDARD.encode(random::<32>())
    }

    /// A short public fingerprint (the first 4 bytes of its SHA-256, hex),
    /// stored beside what it sealed so that a wrong key is named as such.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn seal(&self, plain: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher, plain)
    }

    pub(crate) fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher, sealed)
    }
}

fn seal_with(cipher: &ChaCha20Poly1305, plain: &[u8]) -> Vec<u8> {
    let nonce = random::<12>();
    let mut out = nonce.to_vec();
    // Encryption only fails for messages over 256 GiB.
    out.extend(
        cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .expect("message too long to encrypt"),
    );
    out
}

fn open_with(cipher: &ChaCha20Poly1305, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, ct) = sealed.split_at(12);
    cipher.decrypt(Nonce::from_slice(nonce), ct).ok()
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn sealed_secrets_round_trip_and_do_not_contain_the_plaintext() {
        let keys = Keys::generate();
        let sealed = keys.seal(b"{\"api-key\":\"hunter2\"}");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(keys.open(&sealed).unwrap(), b"{\"api-key\":\"hunter2\"}");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open(&tampered), None);
        assert_eq!(
            Keys::generate().open(&sealed),
            None,
            "another host's key opens nothing"
        );
    }

    #[test]
    fn key_encryption_keys_parse_from_base64_or_hex_and_say_what_is_wrong() {
        use super::KeyEncryptionKey;
        let b64 = KeyEncryptionKey::generate_text();
        let k = KeyEncryptionKey::parse(&format!("{b64}\n")).unwrap();
        let sealed = k.seal(b"keys");
        assert_eq!(
            KeyEncryptionKey::parse(&b64)
                .unwrap()
                .open(&sealed)
                .unwrap(),
            b"keys"
        );
        let hex = "00".repeat(32);
        let zero = KeyEncryptionKey::parse(&hex).unwrap();
        assert_eq!(zero.id().len(), 8);
        assert_eq!(zero.open(&sealed), None, "another key opens nothing");
        assert!(
            KeyEncryptionKey::parse("AAAA")
                .unwrap_err()
                .contains("this one is 3")
        );
        assert!(
            KeyEncryptionKey::parse("not a key!")
                .unwrap_err()
                .contains("base64 or hex")
        );
    }

    #[test]
    fn key_file_round_trips_and_bad_files_say_why() {
        let keys = Keys::generate();
        let again = Keys::from_file(&keys.to_file()).unwrap();
        assert_eq!(again.sign(b"x"), keys.sign(b"x"));
        assert!(Keys::from_file("{}").unwrap_err().contains("missing"));
        assert!(
            Keys::from_file(r#"{"kid":"a","signing":"AAAA","encryption":"AAAA"}"#)
                .unwrap_err()
                .contains("32 bytes")
        );
    }
}
