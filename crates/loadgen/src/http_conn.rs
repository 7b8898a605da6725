//! One keep-alive HTTP/1.1 connection for players that make requests one after another (LL-HLS
//! parts and playlists, a WHEP offer): a request out, the whole response in, bounded.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http_body::BodyDecoder;
use crate::http_head::{HeadParser, ResponseHead};
use crate::outcome::{Fail, FailReason};

/// The largest response a player reads (a part, a playlist, an SDP answer).
const MAX_BODY: usize = 16 << 20;

pub struct Conn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream, host: String) -> Self {
        Self { stream, host, buf: vec![0; 64 * 1024] }
    }

    /// `GET path`: the status and the whole body.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), Fail> {
        let (head, body) = self.request("GET", path, "", None).await?;
        Ok((head.status, body))
    }

    /// `method path` with `headers` (each ending in CRLF) and an optional body (`Content-Type`,
    /// bytes): the response head and the whole body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<(ResponseHead, Vec<u8>), Fail> {
        let io = |e: std::io::Error| Fail::new(FailReason::Io(e.kind()), e);
        let mut request =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ferrocast-loadgen\r\n{headers}", self.host);
        if let Some((content_type, bytes)) = body {
            request.push_str(&format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", bytes.len()));
        }
        request.push_str("\r\n");
        let mut out = request.into_bytes();
        if let Some((_, bytes)) = body {
            out.extend_from_slice(bytes);
        }
        self.stream.write_all(&out).await.map_err(io)?;
        let mut head = HeadParser::new();
        let (response, mut input) = loop {
            let n = self.stream.read(&mut self.buf).await.map_err(io)?;
            if n == 0 {
                return Err(Fail::new(FailReason::ClosedEarly, "the server closed the connection"));
            }
            if let Some((response, used)) = head.feed(&self.buf[..n]).map_err(|e| Fail::new(FailReason::BadHttp, e))? {
                break (response, self.buf[used..n].to_vec());
            }
        };
        let mut decoder =
            if response.chunked { BodyDecoder::chunked() } else { BodyDecoder::identity(response.content_length) };
        let mut body = Vec::new();
        loop {
            let mut slice = &input[..];
            while let Some(data) = decoder.next_data(&mut slice).map_err(|e| Fail::new(FailReason::BadHttp, e))? {
                body.extend_from_slice(data);
            }
            if decoder.is_done() {
                return Ok((response, body));
            }
            if body.len() > MAX_BODY {
                return Err(Fail::new(FailReason::BadHttp, "a response larger than 16 MiB"));
            }
            let n = self.stream.read(&mut self.buf).await.map_err(io)?;
            if n == 0 {
                // A body with neither a length nor chunks ends when the connection does.
                if !response.chunked && response.content_length.is_none() {
                    return Ok((response, body));
                }
                return Err(Fail::new(FailReason::ClosedEarly, "the server closed the connection mid-response"));
            }
            input = self.buf[..n].to_vec();
        }
    }
}
