//! Webtask tokens on the wire: HS256 JWTs whose header has no `typ`, as the
//! original minted them (wt-cli switches to another protocol when `typ` is
//! present).

use super::Claims;
use crate::crypto::Keys;
use crate::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// Signs `claims` as `base64url({"alg":"HS256","kid":…}).base64url(claims).sig`.
pub(crate) fn encode(keys: &Keys, claims: &Claims) -> String {
    let header = serde_json::json!({ "alg": "HS256", "kid": keys.kid });
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialize")));
    let sig = keys.sign(out.as_bytes());
    out.push('.');
    out.push_str(&sig);
    out
}

/// Checks signature, key id and validity window; revocation is checked by the caller.
pub(crate) fn decode(keys: &Keys, token: &str, now: u64) -> Result<Claims, ApiError> {
    let bad = || {
        ApiError::forbidden("rejecting request with a token that is not a JWT issued by this host")
    };
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    if header["alg"] != "HS256" {
        return Err(ApiError::forbidden(
            "rejecting request with a JWT token not signed with HS256",
        ));
    }
    if header["kid"] != keys.kid.as_str() {
        return Err(ApiError::forbidden(
            "rejecting request with JWT token signed with untrusted key",
        ));
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    if !keys.verify(&token.as_bytes()[..h.len() + 1 + c.len()], &sig) {
        return Err(ApiError::forbidden(
            "rejecting request with JWT token that fails signature validation",
        ));
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(bad)?;
    if claims.nbf.is_some_and(|nbf| now < nbf) {
        return Err(ApiError::forbidden("not yet valid JWT token"));
    }
    if claims.exp.is_some_and(|exp| now >= exp) {
        return Err(ApiError::forbidden("expired JWT token"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_has_no_typ_and_tokens_round_trip() {
        let keys = Keys::generate();
        let claims = Claims {
            jti: "abc".into(),
            iat: 5,
            ten: Some("acme".into()),
            dd: Some(1),
            ..Claims::default()
        };
        let t = encode(&keys, &claims);
        let header = String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header, format!(r#"{{"alg":"HS256","kid":"{}"}}"#, keys.kid));
        assert_eq!(decode(&keys, &t, 10).unwrap(), claims);
        let e = decode(&Keys::generate(), &t, 10).unwrap_err();
        assert!(e.message.contains("untrusted key"), "{}", e.message);
        let mut parts: Vec<&str> = t.split('.').collect();
        let widened = URL_SAFE_NO_PAD.encode(br#"{"jti":"abc","iat":5}"#);
        parts[1] = &widened;
        let forged = parts.join(".");
        assert!(
            decode(&keys, &forged, 10)
                .unwrap_err()
                .message
                .contains("signature")
        );
        assert!(
            decode(&keys, "nope", 10)
                .unwrap_err()
                .message
                .contains("not a JWT")
        );
    }

    #[test]
    fn expiry_and_not_before_are_enforced() {
        let keys = Keys::generate();
        let t = encode(
            &keys,
            &Claims {
                jti: "a".into(),
                nbf: Some(10),
                exp: Some(20),
                ..Claims::default()
            },
        );
        assert_eq!(
            decode(&keys, &t, 5).unwrap_err().message,
            "not yet valid JWT token"
        );
        assert_eq!(
            decode(&keys, &t, 20).unwrap_err().message,
            "expired JWT token"
        );
        assert!(decode(&keys, &t, 15).is_ok());
    }
}
