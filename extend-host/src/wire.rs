//! Deserializers for the loose shapes clients send: numbers as strings, and
//! string maps whose values may be nested JSON.

use serde::{Deserialize, Deserializer, de};
use serde_json::Value;
use std::collections::BTreeMap;

/// A non-negative integer sent as a number, a string (`wt token create
/// --exp` sends strings) or a flag (`true` = 1).
pub(crate) fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(Value::Bool(b)) => Some(u64::from(b)),
        Some(_) => None,
    };
    n.map(Some)
        .ok_or_else(|| de::Error::custom("must be a non-negative integer"))
}

/// A map of strings (`meta`, `secrets`, `ectx`). Non-string values are kept
/// as their JSON text, since wt-cli turns `--secret a.b=c` into a nested object.
pub(crate) fn opt_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(
            m.into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect(),
        )),
        Some(_) => Err(de::Error::custom("must be an object of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "opt_number")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "opt_string_map")]
        m: Option<BTreeMap<String, String>>,
    }

    #[test]
    fn numbers_as_strings_and_nested_map_values() {
        let p: Probe = serde_json::from_str(r#"{"n":"42","m":{"a":"x","b":{"c":1}}}"#).unwrap();
        assert_eq!(p.n, Some(42));
        let m = p.m.unwrap();
        assert_eq!((m["a"].as_str(), m["b"].as_str()), ("x", r#"{"c":1}"#));
        let p: Probe = serde_json::from_str(r#"{"n":true,"m":null}"#).unwrap();
        assert_eq!((p.n, p.m), (Some(1), None));
        let e = serde_json::from_str::<Probe>(r#"{"n":"soon"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("non-negative integer"), "{e}");
        assert!(serde_json::from_str::<Probe>(r#"{"m":[1]}"#).is_err());
    }
}
