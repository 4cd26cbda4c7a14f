//! The `timeout = "2s"` grammar: a whole number followed by `ms`, `s` or `m`.

/// The longest timeout a point may declare: a deadline longer than this is a
/// job queue, not an extension call.
pub(crate) const MAX_MS: u64 = 15 * 60 * 1000;

/// Parses a timeout into milliseconds, or says precisely what is wrong.
pub(crate) fn parse_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "timeout `{text}` must start with a whole number, e.g. \"2s\" or \"500ms\""
        ));
    }
    if unit.starts_with('.') || unit.starts_with(',') {
        return Err(format!(
            "timeout `{text}` must be a whole number of its unit; write fractions in a smaller unit, e.g. \"1500ms\""
        ));
    }
    let per_unit: u64 = match unit.trim_start() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "" => {
            return Err(format!(
                "timeout `{text}` needs a unit: `ms`, `s` or `m`, e.g. \"{number}s\""
            ));
        }
        other => {
            return Err(format!(
                "timeout `{text}` has an unknown unit `{other}`; use `ms`, `s` or `m`"
            ));
        }
    };
    let too_long = || format!("timeout `{text}` is longer than the maximum of 15 minutes");
    let n: u64 = number.parse().map_err(|_| too_long())?;
    let ms = n.checked_mul(per_unit).ok_or_else(too_long)?;
    if ms == 0 {
        return Err(format!("timeout `{text}` must be greater than zero"));
    }
    if ms > MAX_MS {
        return Err(too_long());
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn accepts_each_unit() {
        assert_eq!(parse_ms("500ms"), Ok(500));
        assert_eq!(parse_ms("2s"), Ok(2_000));
        assert_eq!(parse_ms("15m"), Ok(900_000));
        assert_eq!(parse_ms(" 3 s"), Ok(3_000));
    }

    #[test]
    fn explains_each_mistake() {
        let err = |s| parse_ms(s).unwrap_err();
        assert!(err("s").contains("must start with a whole number"));
        assert!(err("2").contains("needs a unit"));
        assert!(err("2h").contains("unknown unit `h`"));
        assert!(err("1.5s").contains("whole number of its unit"));
        assert!(err("0ms").contains("greater than zero"));
        assert!(err("16m").contains("15 minutes"));
        assert!(err("99999999999999999999s").contains("15 minutes"));
    }
}
