//! Webtask tokens: HS256 JWTs whose header has no `typ`, as the original minted
//! them (wt-cli switches to another protocol when `typ` is present), and the
//! rules for issuing them.

use crate::crypto::Keys;
use crate::error::ApiError;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The claims of a token this host issued.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Claims {
    pub(crate) jti: String,
    pub(crate) iat: u64,
    /// Issuance chain: the `jti`s of every ancestor, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ca: Vec<String>,
    /// Containers this token may touch (comma list); absent = all (master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ten: Option<String>,
    /// The named webtask this token stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) jtn: Option<String>,
    /// Delegation depth left; absent = unlimited (master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dd: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dr: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pctx: Option<Map<String, Value>>,
    /// Secrets of an unnamed token, sealed with the host key (base64). Named
    /// webtasks keep their secrets in storage instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ectx: Option<String>,
    /// Rate-limit claims (`ls`..`lto`): accepted and carried, not enforced.
    #[serde(flatten)]
    pub(crate) limits: BTreeMap<String, u64>,
}

impl Claims {
    /// The containers this token is limited to; `None` = every container.
    pub(crate) fn containers(&self) -> Option<Vec<&str>> {
        self.ten
            .as_deref()
            .map(|t| t.split(',').map(str::trim).collect())
    }

    pub(crate) fn covers(&self, container: &str) -> bool {
        self.containers()
            .is_none_or(|list| list.contains(&container))
    }

    /// Refuses with 403 unless this token may manage `container`.
    pub(crate) fn authorize(&self, container: &str) -> Result<(), ApiError> {
        if self.jtn.is_some() {
            return Err(ApiError::forbidden(
                "a webtask token (one with a `jtn` claim) cannot call the management API; use a tenant or master token",
            ));
        }
        if !self.covers(container) {
            return Err(ApiError::forbidden(format!(
                "not authorized to perform operation on tenant `{container}`"
            )));
        }
        Ok(())
    }
}

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

/// The claims a client may request from `POST /api/tokens/issue`.
const REQUESTABLE: &[&str] = &[
    "ten", "jtn", "jtnm", "nbf", "exp", "host", "meta", "pb", "mb", "dd", "dr", "pctx", "ectx",
    "url", "code", "ls", "lm", "lh", "ld", "lw", "lo", "lts", "ltm", "lth", "ltd", "ltw", "lto",
];
const LIMIT_CLAIMS: &[&str] = &[
    "ls", "lm", "lh", "ld", "lw", "lo", "lts", "ltm", "lth", "ltd", "ltw", "lto",
];

/// A parsed `POST /api/tokens/issue` body.
#[derive(Debug, Default)]
pub(crate) struct IssueRequest {
    pub(crate) ten: Option<String>,
    pub(crate) jtn: Option<String>,
    pub(crate) nbf: Option<u64>,
    pub(crate) exp: Option<u64>,
    pub(crate) dd: Option<u64>,
    pub(crate) dr: Option<u64>,
    pub(crate) mb: Option<u64>,
    pub(crate) pb: Option<u64>,
    pub(crate) host: Option<String>,
    pub(crate) pctx: Option<Map<String, Value>>,
    pub(crate) ectx: Option<BTreeMap<String, String>>,
    pub(crate) meta: Option<BTreeMap<String, String>>,
    pub(crate) code: Option<String>,
    pub(crate) limits: BTreeMap<String, u64>,
}

/// A number claim; clients send numbers as strings (`wt token create --exp`)
/// and flags as `true`, so both are accepted.
fn number(name: &str, v: &Value) -> Result<u64, ApiError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    };
    n.ok_or_else(|| ApiError::bad_request(format!("claim `{name}` must be a non-negative integer")))
}

/// A string map (`meta`, `ectx`); non-string values are kept as their JSON text,
/// since wt-cli turns `--secret a.b=c` into a nested object.
pub(crate) fn string_map(name: &str, v: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(m) = v else {
        return Err(ApiError::bad_request(format!(
            "claim `{name}` must be an object of strings"
        )));
    };
    Ok(m.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect())
}

impl IssueRequest {
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?
        };
        let Value::Object(m) = body else {
            return Err(ApiError::bad_request(
                "the body must be a JSON object of requested claims",
            ));
        };
        let mut r = IssueRequest::default();
        for (k, v) in &m {
            if !REQUESTABLE.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("unsupported claim `{k}`")));
            }
            if v.is_null() {
                continue;
            }
            let string = || {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::bad_request(format!("claim `{k}` must be a string")))
            };
            match k.as_str() {
                "ten" => r.ten = Some(string()?),
                "jtn" => r.jtn = Some(string()?),
                "host" => r.host = Some(string()?),
                "code" => r.code = Some(string()?),
                "nbf" => r.nbf = Some(number(k, v)?),
                "exp" => r.exp = Some(number(k, v)?),
                "dd" => r.dd = Some(number(k, v)?),
                "dr" => r.dr = Some(number(k, v)?),
                "mb" => r.mb = Some(number(k, v)?),
                "pb" => r.pb = Some(number(k, v)?),
                "pctx" => match v {
                    Value::Object(o) => r.pctx = Some(o.clone()),
                    _ => return Err(ApiError::bad_request("claim `pctx` must be an object")),
                },
                "ectx" => r.ectx = Some(string_map(k, v)?),
                "meta" => r.meta = Some(string_map(k, v)?),
                "url" => {
                    return Err(ApiError::bad_request(
                        "claim `url` is not supported: this host runs stored code only; send the code in `code`",
                    ));
                }
                "jtnm" => {
                    return Err(ApiError::bad_request(
                        "claim `jtnm` is not supported by this host",
                    ));
                }
                limit if LIMIT_CLAIMS.contains(&limit) => {
                    let n = number(k, v)?;
                    if n == 0 || n > 2_147_483_647 {
                        return Err(ApiError::bad_request(format!(
                            "claim `{k}` value must be a positive integer not greater than 2147483647"
                        )));
                    }
                    r.limits.insert(k.clone(), n);
                }
                _ => unreachable!("every requestable claim is matched"),
            }
        }
        Ok(r)
    }
}

/// Parses a `ten` claim: a comma list of container names, no empty entries.
fn parse_ten(ten: &str) -> Result<Vec<String>, ApiError> {
    if ten.starts_with('/') {
        return Err(ApiError::bad_request(
            "regular-expression `ten` claims are not supported by this host; list the containers, separated by commas",
        ));
    }
    let list: Vec<String> = ten.split(',').map(|s| s.trim().to_owned()).collect();
    if list.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(
            "the `ten` claim cannot contain a list with empty entries",
        ));
    }
    for c in &list {
        crate::names::check("container", c)?;
    }
    Ok(list)
}

/// Applies the issuance rules of the original platform to a request made with
/// `parent`, returning the child's claims (without `jti`/`iat`/`ectx`, which the
/// caller fills in).
pub(crate) fn derive(parent: &Claims, req: &IssueRequest, now: u64) -> Result<Claims, ApiError> {
    if parent.jtn.is_some() || parent.dd == Some(0) {
        return Err(ApiError::forbidden(
            "The authentication webtask token cannot be used to issue new webtask tokens.",
        ));
    }
    let ten = match (&req.ten, parent.containers()) {
        (Some(t), parents) => {
            let list = parse_ten(t)?;
            if let Some(parents) = parents
                && let Some(outside) = list.iter().find(|c| !parents.contains(&c.as_str()))
            {
                return Err(ApiError::forbidden(format!(
                    "the `ten` claim must contain a subset of tenants in the `ten` claim of the authentication token (`{outside}` is not)"
                )));
            }
            Some(list.join(","))
        }
        (None, _) => parent.ten.clone(),
    };
    if let Some(jtn) = &req.jtn {
        if ten.as_deref().is_none_or(|t| t.contains(',')) {
            return Err(ApiError::bad_request(
                "specific jtn may only be requested when issuing tokens to be used in specific containers",
            ));
        }
        crate::names::check("webtask", jtn)?;
    } else if req.meta.is_some() {
        return Err(ApiError::bad_request(
            "the `meta` claim can only be specified together with `jtn`",
        ));
    } else if req.code.is_some() {
        return Err(ApiError::bad_request(
            "the `code` claim can only be specified together with `jtn`: this host runs named webtasks only",
        ));
    }
    if let (Some(pe), Some(re)) = (parent.exp, req.exp)
        && re > pe
    {
        return Err(ApiError::forbidden(
            "the `exp` claim cannot extend the expiration of the authentication token",
        ));
    }
    if let (Some(pn), Some(rn)) = (parent.nbf, req.nbf)
        && rn < pn
    {
        return Err(ApiError::forbidden(
            "the `nbf` claim cannot precede the `nbf` claim of the authentication token",
        ));
    }
    let exp = req.exp.or(parent.exp);
    let nbf = req.nbf.or(parent.nbf);
    if let Some(exp) = exp {
        if exp <= now {
            return Err(ApiError::bad_request("the `exp` claim is in the past"));
        }
        if nbf.is_some_and(|nbf| nbf >= exp) {
            return Err(ApiError::bad_request(
                "the `nbf` claim must be earlier than the `exp` claim",
            ));
        }
    }
    for fixed in ["pctx", "ectx"] {
        let has = if fixed == "pctx" {
            parent.pctx.is_some() && req.pctx.is_some()
        } else {
            parent.ectx.is_some() && req.ectx.is_some()
        };
        if has {
            return Err(ApiError::bad_request(format!(
                "the `{fixed}` claim cannot be specified if the authentication token already specifies it"
            )));
        }
    }
    let wanted = req.dd.unwrap_or(1);
    let dd = match parent.dd {
        Some(p) => wanted.min(p - 1),
        None => wanted,
    };
    let mut ca = parent.ca.clone();
    ca.push(parent.jti.clone());
    let mut limits = parent
        .limits
        .iter()
        .filter(|(k, _)| !k.starts_with("lt"))
        .map(|(k, v)| (k.clone(), *v))
        .collect::<BTreeMap<_, _>>();
    limits.extend(req.limits.iter().map(|(k, v)| (k.clone(), *v)));
    Ok(Claims {
        jti: String::new(),
        iat: now,
        ca,
        ten,
        jtn: req.jtn.clone(),
        dd: Some(if req.jtn.is_some() { 0 } else { dd }),
        dr: req.dr,
        nbf,
        exp,
        mb: req.mb,
        pb: req.pb,
        host: req.host.clone(),
        pctx: req.pctx.clone().or_else(|| parent.pctx.clone()),
        ectx: parent.ectx.clone(),
        limits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> Claims {
        Claims {
            jti: "m".into(),
            iat: 1,
            ..Claims::default()
        }
    }

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

    #[test]
    fn numbers_may_arrive_as_strings_and_unknown_claims_are_named() {
        let r =
            IssueRequest::parse(br#"{"ten":"a","exp":"2000000000","dd":"0","mb":true}"#).unwrap();
        assert_eq!((r.exp, r.dd, r.mb), (Some(2_000_000_000), Some(0), Some(1)));
        assert_eq!(
            IssueRequest::parse(br#"{"bogus":1}"#).unwrap_err().message,
            "unsupported claim `bogus`"
        );
        assert!(
            IssueRequest::parse(br#"{"exp":"soon"}"#)
                .unwrap_err()
                .message
                .contains("`exp`")
        );
    }

    #[test]
    fn children_cannot_widen_ten_extend_exp_or_exceed_depth() {
        let tenant = Claims {
            jti: "t".into(),
            ten: Some("a,b".into()),
            dd: Some(1),
            exp: Some(100),
            ..Claims::default()
        };
        let req = |json: &str| IssueRequest::parse(json.as_bytes()).unwrap();
        let e = derive(&tenant, &req(r#"{"ten":"a,c"}"#), 1).unwrap_err();
        assert_eq!(e.status, 403);
        assert!(e.message.contains("subset"), "{}", e.message);
        assert!(
            derive(&tenant, &req(r#"{"exp":200}"#), 1)
                .unwrap_err()
                .message
                .contains("extend the expiration")
        );
        let child = derive(&tenant, &req(r#"{"ten":"a","dd":5}"#), 1).unwrap();
        assert_eq!(
            (child.ten.as_deref(), child.dd, child.exp),
            (Some("a"), Some(0), Some(100))
        );
        assert_eq!(child.ca, vec!["t".to_owned()]);
        let e = derive(&child, &req("{}"), 1).unwrap_err();
        assert!(
            e.message.contains("cannot be used to issue"),
            "{}",
            e.message
        );
        let from_master = derive(&master(), &req(r#"{"ten":"acme"}"#), 1).unwrap();
        assert_eq!(
            (from_master.ten.as_deref(), from_master.dd),
            (Some("acme"), Some(1))
        );
        assert!(
            derive(&master(), &req(r#"{"jtn":"x"}"#), 1)
                .unwrap_err()
                .message
                .contains("specific containers")
        );
        assert!(
            derive(&master(), &req(r#"{"ten":"/a.*/"}"#), 1)
                .unwrap_err()
                .message
                .contains("regular-expression")
        );
    }
}
