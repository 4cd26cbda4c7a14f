//! Round trips of every frame, and any cut of one is an error.
use super::*;
use std::time::Duration;

#[test]
fn a_run_frame_round_trips_with_and_without_code() {
    for code in [Some("module.exports = cb => cb(null, 'é')"), None] {
        let run = Run {
            container: "acme",
            name: "w#draft",
            code_id: u64::MAX,
            generation: 7 << 32,
            code,
            ctx_json: "{\"body\":{\"x\":\"\\u0000\"}}",
            req_json: "{}",
            time_limit: Duration::from_millis(2500),
            compile_only: code.is_none(),
            log_lines: 100,
            seq: 42,
            after: 41,
            cpu_left: Duration::from_nanos(123_456_789),
            spin: Duration::from_micros(100),
        };
        let mut out = Vec::new();
        run.encode().write_to(&mut out).unwrap();
        let mut buf = Vec::new();
        assert_eq!(read(&mut out.as_slice(), &mut buf).unwrap(), Some(RUN));
        assert_eq!(Run::decode(&buf).unwrap(), run);
        // Any cut is an error, never a wrong run.
        for cut in [0, 1, buf.len() / 2, buf.len() - 1] {
            assert!(Run::decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }
}

#[test]
fn every_frame_a_worker_sends_round_trips_and_any_cut_is_an_error() {
    let frames = [
        ToHost::Log {
            level: 50,
            line: "boom é",
        },
        ToHost::Log {
            level: -1,
            line: "",
        },
        ToHost::NeedCode,
        ToHost::Wait(crate::sandbox::io::Wait {
            calls: vec![
                crate::sandbox::io::HostCall::Fetch(
                    7,
                    crate::egress::Request {
                        method: "POST".into(),
                        url: "https://api.example.com/ü".into(),
                        headers: vec![("authorization".into(), "Bearer k".into())],
                        body: Some(vec![0, 1, 255]),
                        redirect: crate::egress::Redirect::Manual,
                    },
                ),
                crate::sandbox::io::HostCall::Fetch(
                    8,
                    crate::egress::Request {
                        method: "GET".into(),
                        url: "http://x/".into(),
                        headers: vec![],
                        body: None,
                        redirect: crate::egress::Redirect::Follow,
                    },
                ),
                crate::sandbox::io::HostCall::Cancel(7),
            ],
            wake_after: Some(Duration::from_millis(15)),
        }),
        ToHost::Wait(crate::sandbox::io::Wait::default()),
        ToHost::Done(Done {
            status: 429,
            source: Source::Proxy,
            json: true,
            body: "{\"message\":\"CPU budget exhausted\"}",
            headers: vec![("retry-after", "3"), ("x-a", "ü")],
            cpu: Duration::from_nanos(987_654_321),
            heap: 1 << 40,
            discarded: true,
            resident: 12,
            evicted: 3,
        }),
        ToHost::Done(Done {
            status: 200,
            source: Source::Compiler,
            json: false,
            body: "",
            headers: vec![],
            cpu: Duration::ZERO,
            heap: 0,
            discarded: false,
            resident: 0,
            evicted: 0,
        }),
    ];
    for frame in frames {
        let mut out = Vec::new();
        frame.encode().write_to(&mut out).unwrap();
        let mut buf = Vec::new();
        let tag = read(&mut out.as_slice(), &mut buf).unwrap().unwrap();
        assert_eq!(ToHost::decode(tag, &buf).unwrap(), frame);
        for cut in (0..buf.len()).step_by(3) {
            assert!(
                ToHost::decode(tag, &buf[..cut]).is_err(),
                "{frame:?} cut at {cut}"
            );
        }
    }
    assert!(
        ToHost::decode(99, &[]).is_err(),
        "an unknown tag is refused"
    );
}

#[test]
fn a_resume_frame_round_trips_and_any_cut_is_an_error() {
    use crate::egress::Outcome;
    let frame = ResumeFrame {
        seq: 9,
        run: 4,
        resume: crate::sandbox::io::Resume {
            completions: vec![
                (
                    1,
                    Outcome::Response {
                        status: 201,
                        status_text: "Created".into(),
                        url: "https://api.example.com/".into(),
                        redirected: true,
                        headers: vec![("content-type".into(), "application/json".into())],
                        body: b"{\"ok\":true}".to_vec(),
                    },
                ),
                (2, Outcome::Failed("egress refused: port 22".into())),
            ],
            expired: false,
        },
    };
    let mut out = Vec::new();
    frame.encode().write_to(&mut out).unwrap();
    let mut buf = Vec::new();
    assert_eq!(read(&mut out.as_slice(), &mut buf).unwrap(), Some(RESUME));
    assert_eq!(ResumeFrame::decode(&buf).unwrap(), frame);
    for cut in 0..buf.len() {
        assert!(ResumeFrame::decode(&buf[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_frame_round_trips_and_truncation_is_an_error() {
    let mut out = Vec::new();
    Encoder::new(RUN)
        .str("acme")
        .num(42)
        .str("é")
        .write_to(&mut out)
        .unwrap();
    let mut buf = Vec::new();
    let tag = read(&mut out.as_slice(), &mut buf).unwrap();
    assert_eq!(tag, Some(RUN));
    let mut d = Decoder::new(&buf);
    assert_eq!(d.str().unwrap(), "acme");
    assert_eq!(d.num().unwrap(), 42);
    assert_eq!(d.str().unwrap(), "é");
    assert_eq!(
        d.num().unwrap_err().to_string(),
        "malformed frame: truncated"
    );
    assert_eq!(read(&mut [].as_slice(), &mut buf).unwrap(), None);
}
