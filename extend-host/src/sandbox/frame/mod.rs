//! The frames between the host and its worker processes, over the worker's
//! stdin and stdout: `[u32 length][u8 tag][fields]`, each string field
//! `[u32 length][UTF-8]`, each number `[u64]`, little-endian. A hand-rolled
//! codec because a run's JSON payloads would otherwise be escaped twice.

mod parked;

pub(crate) use parked::ResumeFrame;

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

#[cfg(test)]
mod tests;
