//! The frames between the host and its worker processes, over the worker's
//! stdin and stdout: `[u32 length][u8 tag][fields]`, each string field
//! `[u32 length][UTF-8]`, each number `[u64]`, little-endian. A hand-rolled
//! codec because a run's JSON payloads would otherwise be escaped twice.

use std::io::{self, Read, Write};

/// Host to worker: run or compile (see [`super::process`] for the fields).
pub(crate) const RUN: u8 = 1;
/// Worker to host: one `console.*` line of the current run.
pub(crate) const LOG: u8 = 10;
/// Worker to host: resend the run with the code; the worker does not have it.
pub(crate) const NEED_CODE: u8 = 11;
/// Worker to host: the run's reply.
pub(crate) const DONE: u8 = 12;

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
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        let b = self.take(u32::from_le_bytes(len) as usize)?;
        std::str::from_utf8(b).map_err(|_| malformed("a string is not UTF-8"))
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
mod tests {
    use super::*;

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
