//! The rules for issuing a token from `POST /api/tokens/issue`: what a client
//! may ask for, parsed with serde, and what a parent token may hand down.

use super::Claims;
use crate::error::ApiError;
use crate::wire::{opt_number, opt_string_map};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A `POST /api/tokens/issue` body: the claims a client may request. Unknown
/// claims are refused by name.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct IssueRequest {
    pub(crate) ten: Option<String>,
    pub(crate) jtn: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub(crate) dd: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub(crate) dr: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub(crate) mb: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub(crate) pb: Option<u64>,
    pub(crate) host: Option<String>,
    pub(crate) pctx: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "opt_string_map")]
    pub(crate) ectx: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "opt_string_map")]
    pub(crate) meta: Option<BTreeMap<String, String>>,
    pub(crate) code: Option<String>,
    /// Every other claim: refused, by name.
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
    // The rate-limit claims: accepted and carried, not enforced.
    #[serde(default, deserialize_with = "opt_number")]
    ls: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lm: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lh: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    ld: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lw: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lo: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lts: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    ltm: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lth: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    ltd: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    ltw: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    lto: Option<u64>,
}

impl IssueRequest {
    fn entries(&self) -> [(&'static str, Option<u64>); 12] {
        [
            ("ls", self.ls),
            ("lm", self.lm),
            ("lh", self.lh),
            ("ld", self.ld),
            ("lw", self.lw),
            ("lo", self.lo),
            ("lts", self.lts),
            ("ltm", self.ltm),
            ("lth", self.lth),
            ("ltd", self.ltd),
            ("ltw", self.ltw),
            ("lto", self.lto),
        ]
    }

    /// Parses a request body; an empty body asks for nothing in particular.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(IssueRequest::default());
        }
        let de = &mut serde_json::Deserializer::from_slice(body);
        let req: IssueRequest = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ApiError::bad_request(format!("the token request is not valid: {inner}"))
            } else {
                ApiError::bad_request(format!("claim `{path}` is not valid: {inner}"))
            }
        })?;
        if let Some(claim) = req.unknown.keys().next() {
            return Err(ApiError::bad_request(match claim.as_str() {
                "url" => "claim `url` is not supported: this host runs stored code only; send the code in `code`".to_owned(),
                "jtnm" => "claim `jtnm` is not supported by this host".to_owned(),
                other => format!("unsupported claim `{other}`"),
            }));
        }
        for (name, value) in req.entries() {
            if value.is_some_and(|n| n == 0 || n > 2_147_483_647) {
                return Err(ApiError::bad_request(format!(
                    "claim `{name}` value must be a positive integer not greater than 2147483647"
                )));
            }
        }
        Ok(req)
    }

    /// The rate-limit claims that were requested.
    pub(crate) fn limits(&self) -> BTreeMap<String, u64> {
        self.entries()
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_owned(), v?)))
            .collect()
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
    limits.extend(req.limits());
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
