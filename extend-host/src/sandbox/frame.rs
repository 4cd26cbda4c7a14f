//! The frames between the host and its worker processes, over the worker's
//! stdin and stdout: `[u32 length][u8 tag][fields]`, each string field
//! `[u32 length][UTF-8]`, each number `[u64]`, little-endian. A hand-rolled
//! codec because a run's JSON payloads would otherwise be escaped twice.

use crate::error::Source;
use std::io::{self, Read, Write};

/// Host to worker: run or compile (see [`super::process`] for the fields).
pub(crate) const RUN: u8 = 1;
/// Worker to host: one `console.*` line of the current run.
pub(crate) const LOG: u8 = 10;
/// Worker to host: resend the run with the code; the worker does not have it.
pub(crate) const NEED_CODE: u8 = 11;
/// Worker to host: the run's reply.
pub(crate) const DONE: u8 = 12;
/// Host to worker: what a parked run waited for (see [`super::io`]).
pub(crate) const RESUME: u8 = 2;
/// Worker to host: the run parked, waiting on what it asks for.
pub(crate) const WAIT: u8 = 13;

/// The largest frame either side accepts: a run body, its response and code
/// all fit well within it.
const MAX_FRAME: usize = 256 << 20;

/// Builds one frame.
pub(crate) struct Encoder(Vec<u8>);

impl Encoder {
    pub(crate) fn new(tag: u8) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&[0; 4]);
        buf.push(tag);
        Encoder(buf)
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(&b[..len as usize]);
        self
    }

    pub(crate) fn num(&mut self, n: u64) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// The frame's bytes, its length filled in.
    pub(crate) fn finish(&mut self) -> &[u8] {
        let len = u32::try_from(self.0.len() - 4).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        &self.0
    }

    /// Writes the frame (not flushed).
    pub(crate) fn write_to(&mut self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(self.finish())
    }
}

/// Reads the fields of one frame.
pub(crate) struct Decoder<'a>(&'a [u8]);

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed frame: {what}"),
    )
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Decoder(body)
    }

    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn num(&mut self) -> io::Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn str(&mut self) -> io::Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| malformed("a string is not UTF-8"))
    }

    pub(crate) fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        self.take(u32::from_le_bytes(len) as usize)
    }

    /// Bytes not read yet.
    pub(crate) fn left(&self) -> usize {
        self.0.len()
    }
}

/// A RESUME frame, host to worker: what the parked run `run` (the sequence
/// number of the RUN frame that started it) waited for. `seq` is this
/// frame's own sequence number, for the worker's CPU accounting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumeFrame {
    pub(crate) seq: u64,
    pub(crate) run: u64,
    pub(crate) resume: super::io::Resume,
}

impl ResumeFrame {
    /// The frame's bytes.
    pub(crate) fn encode(&self) -> Encoder {
        let mut e = Encoder::new(RESUME);
        e.num(self.seq).num(self.run);
        self.resume.encode_into(&mut e);
        e
    }

    /// Reads a RESUME frame's fields (the body after its tag).
    pub(crate) fn decode(body: &[u8]) -> io::Result<Self> {
        let mut d = Decoder::new(body);
        Ok(ResumeFrame {
            seq: d.num()?,
            run: d.num()?,
            resume: super::io::Resume::decode_from(&mut d)?,
        })
    }
}

/// A RUN frame, host to worker: one run (or compile) of a webtask. Encoded
/// and decoded here, side by side, so that the two ends cannot disagree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run<'a> {
    pub(crate) container: &'a str,
    pub(crate) name: &'a str,
    pub(crate) code_id: u64,
    /// The container's generation: runtimes built before a delete are dropped.
    pub(crate) generation: u64,
    /// The code, when the worker asked for it (or the host knows it lacks it).
    pub(crate) code: Option<&'a str>,
    pub(crate) request_id: &'a str,
    pub(crate) ctx_json: &'a str,
    pub(crate) req_json: &'a str,
    pub(crate) time_limit: std::time::Duration,
    pub(crate) compile_only: bool,
    pub(crate) log_lines: u64,
    /// Routing: this frame's sequence number, the oldest unanswered one's
    /// (0 if none), the container's CPU budget when sent, and how long the
    /// worker may spin for its next frame.
    pub(crate) seq: u64,
    pub(crate) after: u64,
    pub(crate) cpu_left: std::time::Duration,
    pub(crate) spin: std::time::Duration,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<'a> Run<'a> {
    /// The frame's bytes.
    pub(crate) fn encode(&self) -> Encoder {
        let mut e = Encoder::new(RUN);
        e.str(self.container)
            .str(self.name)
            .num(self.code_id)
            .num(self.generation)
            .num(u64::from(self.code.is_some()))
            .str(self.code.unwrap_or(""))
            .str(self.request_id)
            .str(self.ctx_json)
            .str(self.req_json)
            .num(nanos(self.time_limit))
            .num(u64::from(self.compile_only))
            .num(self.log_lines)
            .num(self.seq)
            .num(self.after)
            .num(nanos(self.cpu_left))
            .num(nanos(self.spin));
        e
    }

    /// Reads a RUN frame's fields (the body after its tag).
    pub(crate) fn decode(body: &'a [u8]) -> io::Result<Self> {
        let mut d = Decoder::new(body);
        let container = d.str()?;
        let name = d.str()?;
        let code_id = d.num()?;
        let generation = d.num()?;
        let with_code = d.num()? != 0;
        let code = d.str()?;
        Ok(Run {
            container,
            name,
            code_id,
            generation,
            code: with_code.then_some(code),
            request_id: d.str()?,
            ctx_json: d.str()?,
            req_json: d.str()?,
            time_limit: std::time::Duration::from_nanos(d.num()?),
            compile_only: d.num()? != 0,
            log_lines: d.num()?,
            seq: d.num()?,
            after: d.num()?,
            cpu_left: std::time::Duration::from_nanos(d.num()?),
            spin: std::time::Duration::from_nanos(d.num()?),
        })
    }
}

/// The reply of a run, worker to host (a DONE frame), with what the worker
/// reports about itself: whether it dropped the runtime, how many it holds,
/// how many it evicted since its last answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Done<'a> {
    pub(crate) status: u16,
    pub(crate) source: Source,
    /// Whether `body` is JSON (else text).
    pub(crate) json: bool,
    pub(crate) body: &'a str,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) cpu: std::time::Duration,
    pub(crate) heap: u64,
    pub(crate) discarded: bool,
    pub(crate) resident: u64,
    pub(crate) evicted: u64,
}

/// What a worker sends the host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ToHost<'a> {
    /// One `console.*` line of the current run, at a bunyan level.
    Log { level: i32, line: &'a str },
    /// Resend the run with its code: the worker does not have it.
    NeedCode,
    /// The run's reply.
    Done(Done<'a>),
    /// The run parked, waiting on these calls.
    Wait(super::io::Wait),
}

fn source_code(s: Source) -> u64 {
    match s {
        Source::Webtask => 0,
        Source::Compiler => 1,
        Source::Proxy => 2,
    }
}

fn source_of(n: u64) -> Source {
    match n {
        1 => Source::Compiler,
        2 => Source::Proxy,
        _ => Source::Webtask,
    }
}

impl<'a> ToHost<'a> {
    /// The frame's bytes.
    pub(crate) fn encode(&self) -> Encoder {
        match self {
            ToHost::Log { level, line } => {
                let mut e = Encoder::new(LOG);
                e.num(i64::from(*level) as u64).str(line);
                e
            }
            ToHost::NeedCode => Encoder::new(NEED_CODE),
            ToHost::Wait(w) => {
                let mut e = Encoder::new(WAIT);
                w.encode_into(&mut e);
                e
            }
            ToHost::Done(d) => {
                let mut e = Encoder::new(DONE);
                e.num(u64::from(d.status))
                    .num(source_code(d.source))
                    .num(u64::from(d.json))
                    .str(d.body)
                    .num(d.headers.len() as u64);
                for (k, v) in &d.headers {
                    e.str(k).str(v);
                }
                e.num(nanos(d.cpu))
                    .num(d.heap)
                    .num(u64::from(d.discarded))
                    .num(d.resident)
                    .num(d.evicted);
                e
            }
        }
    }

    /// Reads a frame the worker sent, from its tag and body.
    pub(crate) fn decode(tag: u8, body: &'a [u8]) -> io::Result<Self> {
        let mut d = Decoder::new(body);
        match tag {
            LOG => Ok(ToHost::Log {
                level: d.num()? as i64 as i32,
                line: d.str()?,
            }),
            NEED_CODE => Ok(ToHost::NeedCode),
            WAIT => Ok(ToHost::Wait(super::io::Wait::decode_from(&mut d)?)),
            DONE => {
                let status = u16::try_from(d.num()?).unwrap_or(500);
                let source = source_of(d.num()?);
                let json = d.num()? != 0;
                let body = d.str()?;
                let n = d.num()?;
                // Each header takes at least 8 bytes: a count past what is
                // left is a malformed frame, not an allocation.
                let mut headers =
                    Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(body.len() + 1));
                for _ in 0..n {
                    headers.push((d.str()?, d.str()?));
                }
                Ok(ToHost::Done(Done {
                    status,
                    source,
                    json,
                    body,
                    headers,
                    cpu: std::time::Duration::from_nanos(d.num()?),
                    heap: d.num()?,
                    discarded: d.num()? != 0,
                    resident: d.num()?,
                    evicted: d.num()?,
                }))
            }
            other => Err(malformed(&format!("unknown frame {other} from the worker"))),
        }
    }
}

/// Reads one frame into `buf`; its tag, or `None` at a clean end of stream.
pub(crate) fn read(r: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<Option<u8>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(malformed("bad length"));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    buf.clear();
    buf.resize(len - 1, 0);
    r.read_exact(buf)?;
    Ok(Some(tag[0]))
}

/// [`read`] for the host's side, which waits on its workers asynchronously.
pub(crate) async fn read_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut Vec<u8>,
) -> io::Result<Option<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(malformed("bad length"));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag).await?;
    buf.clear();
    buf.resize(len - 1, 0);
    r.read_exact(buf).await?;
    Ok(Some(tag[0]))
}

// ---- the parked-run frames' bodies (WAIT and RESUME) ----------------------

use super::io::{HostCall, Resume, Wait};
use crate::egress::{Outcome, Request};

fn pairs(e: &mut Encoder, pairs: &[(String, String)]) {
    e.num(pairs.len() as u64);
    for (k, v) in pairs {
        e.str(k).str(v);
    }
}

fn read_pairs(d: &mut Decoder<'_>) -> io::Result<Vec<(String, String)>> {
    let n = d.num()?;
    // Each pair takes at least 8 bytes: a count past what is left is a
    // malformed frame, not an allocation.
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(d.left() / 8));
    for _ in 0..n {
        out.push((d.str()?.to_owned(), d.str()?.to_owned()));
    }
    Ok(out)
}

impl Wait {
    pub(crate) fn encode_into(&self, e: &mut Encoder) {
        e.num(self.wake_after.map_or(u64::MAX, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
        }));
        e.num(self.calls.len() as u64);
        for call in &self.calls {
            match call {
                HostCall::Fetch(id, r) => {
                    e.num(0).num(*id).str(&r.method).str(&r.url);
                    e.num(super::io::redirect_code(r.redirect));
                    pairs(e, &r.headers);
                    e.num(u64::from(r.body.is_some()));
                    e.bytes(r.body.as_deref().unwrap_or(&[]));
                }
                HostCall::Cancel(id) => {
                    e.num(1).num(*id);
                }
            }
        }
    }

    pub(crate) fn decode_from(d: &mut Decoder<'_>) -> io::Result<Self> {
        let wake = d.num()?;
        let n = d.num()?;
        let mut calls = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(d.left() / 16));
        for _ in 0..n {
            let kind = d.num()?;
            let id = d.num()?;
            calls.push(match kind {
                0 => {
                    let method = d.str()?.to_owned();
                    let url = d.str()?.to_owned();
                    let redirect = super::io::redirect_of(d.num()?);
                    let headers = read_pairs(d)?;
                    let has_body = d.num()? != 0;
                    let body = d.bytes()?.to_vec();
                    HostCall::Fetch(
                        id,
                        Request {
                            method,
                            url,
                            headers,
                            body: has_body.then_some(body),
                            redirect,
                        },
                    )
                }
                1 => HostCall::Cancel(id),
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("malformed frame: unknown host call {other}"),
                    ));
                }
            });
        }
        Ok(Wait {
            calls,
            wake_after: (wake != u64::MAX).then(|| std::time::Duration::from_nanos(wake)),
        })
    }
}

impl Resume {
    pub(crate) fn encode_into(&self, e: &mut Encoder) {
        e.num(u64::from(self.expired));
        e.num(self.completions.len() as u64);
        for (id, outcome) in &self.completions {
            e.num(*id);
            match outcome {
                Outcome::Response {
                    status,
                    status_text,
                    url,
                    redirected,
                    headers,
                    body,
                } => {
                    e.num(0)
                        .num(u64::from(*status))
                        .str(status_text)
                        .str(url)
                        .num(u64::from(*redirected));
                    pairs(e, headers);
                    e.bytes(body);
                }
                Outcome::Failed(message) => {
                    e.num(1).str(message);
                }
            }
        }
    }

    pub(crate) fn decode_from(d: &mut Decoder<'_>) -> io::Result<Self> {
        let expired = d.num()? != 0;
        let n = d.num()?;
        let mut completions =
            Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(d.left() / 16));
        for _ in 0..n {
            let id = d.num()?;
            let outcome = match d.num()? {
                0 => Outcome::Response {
                    status: u16::try_from(d.num()?).unwrap_or(0),
                    status_text: d.str()?.to_owned(),
                    url: d.str()?.to_owned(),
                    redirected: d.num()? != 0,
                    headers: read_pairs(d)?,
                    body: d.bytes()?.to_vec(),
                },
                _ => Outcome::Failed(d.str()?.to_owned()),
            };
            completions.push((id, outcome));
        }
        Ok(Resume {
            completions,
            expired,
        })
    }
}

#[cfg(test)]
mod tests {
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
                request_id: "a1b2",
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
}
