//! The frames of runs that wait on the host: RESUME (host to worker) and
//! the bodies of WAIT and RESUME, encoded and decoded side by side.

use super::{Decoder, Encoder, RESUME};
use crate::egress::{Outcome, Request};
use crate::sandbox::io::{HostCall, Resume, Wait};
use std::io;

/// A RESUME frame, host to worker: what the parked run `run` (the sequence
/// number of the RUN frame that started it) waited for. `seq` is this
/// frame's own sequence number, for the worker's CPU accounting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumeFrame {
    pub(crate) seq: u64,
    pub(crate) run: u64,
    pub(crate) resume: Resume,
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
            resume: Resume::decode_from(&mut d)?,
        })
    }
}

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
                    e.num(crate::sandbox::io::redirect_code(r.redirect));
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
                    let redirect = crate::sandbox::io::redirect_of(d.num()?);
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
