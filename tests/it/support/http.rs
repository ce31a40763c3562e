//! A minimal HTTP/1.1 client over std's TcpStream (one request per connection, `Connection:
//! close`), and the HTTP parsing the proxy shares: enough for tests to talk to the emulators
//! without an HTTP crate.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// A port on 127.0.0.1 that was free a moment ago (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// What a server answered.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    /// As received: names keep their case; look them up with [`Response::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One request to `addr` on a fresh connection: `Host` and `Content-Length` are added, and
/// `Connection: close`; the response is read to the end (a chunked body is decoded).
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        )
    })?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line `{status_line}`")))?;
    let mut body = Vec::new();
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        // No body.
    } else if is_chunked(&headers) {
        read_chunked(&mut reader, |data| body.extend_from_slice(data))?;
    } else if let Some(len) = content_length(&headers)? {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

pub(crate) fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A message's start line and its headers.
pub(crate) type Head = (String, Vec<(String, String)>);

/// The start line and headers of a message; `None` when the peer closed before sending a byte.
pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let start = start.trim_end_matches(['\r', '\n']).to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the headers".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(Some((start, headers)));
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line `{line}`")))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
}

pub(crate) fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

pub(crate) fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "content-length")
        .map(|v| {
            v.parse()
                .map_err(|_| bad(format!("bad Content-Length `{v}`")))
        })
        .transpose()
}

/// Reads a chunked body to its terminator (trailers included), handing `each` the decoded data.
/// `raw`, when given, gets every byte as it was on the wire (to forward it unchanged).
pub(crate) fn read_chunked_raw(
    reader: &mut impl BufRead,
    mut each: impl FnMut(&[u8]),
    mut raw: Option<&mut Vec<u8>>,
) -> io::Result<()> {
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(bad("connection closed inside a chunked body".into()));
        }
        if let Some(raw) = raw.as_deref_mut() {
            raw.extend_from_slice(size_line.as_bytes());
        }
        let size_hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| bad(format!("bad chunk size `{}`", size_line.trim())))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    return Err(bad("connection closed inside chunked trailers".into()));
                }
                if let Some(raw) = raw.as_deref_mut() {
                    raw.extend_from_slice(line.as_bytes());
                }
                if line.trim_end_matches(['\r', '\n']).is_empty() {
                    return Ok(());
                }
            }
        }
        let mut data = vec![0; size + 2];
        reader.read_exact(&mut data)?;
        if let Some(raw) = raw.as_deref_mut() {
            raw.extend_from_slice(&data);
        }
        each(&data[..size]);
    }
}

pub(crate) fn read_chunked(reader: &mut impl BufRead, each: impl FnMut(&[u8])) -> io::Result<()> {
    read_chunked_raw(reader, each, None)
}
