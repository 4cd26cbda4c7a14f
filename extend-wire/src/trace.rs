//! W3C trace context: the trace id both sides log, so that one id follows
//! an invocation from the platform's span to the tenant's log line.

/// The header that carries the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The trace id of a `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), when
/// valid: lowercase hex of the right lengths, version not `ff`, trace id not
/// all zeros.
pub fn trace_id_of(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let is_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    (parts.next().is_none()
        && is_hex(version, 2)
        && version != "ff"
        && is_hex(trace, 32)
        && trace.bytes().any(|c| c != b'0')
        && is_hex(span, 16)
        && is_hex(flags, 2))
    .then(|| trace.to_owned())
}

#[cfg(test)]
mod tests {
    use super::trace_id_of;

    #[test]
    fn only_well_formed_traceparents_give_a_trace_id() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            trace_id_of(&format!("00-{id}-00f067aa0ba902b7-01")).as_deref(),
            Some(id)
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(trace_id_of(bad), None, "{bad}");
        }
    }
}
