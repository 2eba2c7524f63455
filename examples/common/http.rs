//! A small HTTP/1.1 server loop over any `Read + Write` stream, shared by `http_hello`
//! (plain TCP, and std threads for comparison) and `https_hello` (rustls over weft TCP).
//!
//! Requests are parsed with `httparse`. The loop answers every complete request already in
//! its buffer before it reads again, so pipelined requests cost one write for the batch.
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | `200 Hello, World!` |
//! | `GET /files/NAME` | the file `DIR/NAME`, read with `weft::fs`; `403` if NAME has a `..` segment, `404` if missing |
//! | `POST /echo` with `Content-Length` | `200` with the body echoed |
//! | `HEAD` of the above | the headers alone |
//! | anything unparsable | `400`, then the connection is closed |
//! | a header block over 16 KiB / a body over 1 MiB | `431` / `413`, then close |
//! | `Transfer-Encoding` in a request | `501` (only `Content-Length` bodies), then close |
//!
//! HTTP/1.1 connections are kept alive unless the request says `Connection: close`;
//! HTTP/1.0 ones only when the request says `Connection: keep-alive` (as `ab -k` does).

use std::io::{self, Read, Write};
use std::path::Path;

/// The most header bytes buffered while waiting for a request's end.
const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// How many headers a request may have.
const MAX_HEADERS: usize = 64;
/// Answers buffered before they are sent even though more pipelined requests are waiting.
const OUT_LIMIT: usize = 64 * 1024;
/// Requests answered between two yields of the worker.
const YIELD_EVERY: u64 = 64;

/// What one parsed request asks for, copied out of the read buffer.
struct Request {
    method: String,
    path: String,
    head_len: usize,
    body_len: usize,
    keep_alive: bool,
    expects_continue: bool,
    chunked: bool,
}

/// Serves requests on `stream` until the client closes it, asks to close, or sends
/// something malformed. Files for `/files/` come from `files`. Returns how many requests
/// were answered.
pub fn serve<S: Read + Write>(stream: &mut S, files: &Path) -> io::Result<u64> {
    let mut buf = vec![0u8; 8 * 1024];
    let (mut start, mut end) = (0usize, 0usize); // unconsumed input is buf[start..end]
    let mut out = Vec::with_capacity(8 * 1024);
    let mut answered = 0u64;
    loop {
        let parsed = parse(&buf[start..end]);
        let request = match parsed {
            Ok(Some(request)) => request,
            Ok(None) => {
                // Incomplete: send what the batch produced, then read more.
                send(stream, &mut out)?;
                if end - start >= MAX_HEAD {
                    close_with(stream, &mut out, "431 Request Header Fields Too Large")?;
                    return Ok(answered);
                }
                if read_more(stream, &mut buf, &mut start, &mut end, MAX_HEAD)? == 0 {
                    return Ok(answered); // closed, between requests or inside one
                }
                continue;
            }
            Err(what) => {
                close_with(stream, &mut out, &format!("400 Bad Request ({what})"))?;
                return Ok(answered);
            }
        };
        if request.chunked {
            close_with(stream, &mut out, "501 Not Implemented (chunked bodies)")?;
            return Ok(answered);
        }
        if request.body_len > MAX_BODY {
            close_with(stream, &mut out, "413 Content Too Large")?;
            return Ok(answered);
        }
        let total = request.head_len + request.body_len;
        if end - start < total {
            // The body is still coming: make room for all of it, then read it.
            if request.expects_continue && end - start == request.head_len {
                out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            send(stream, &mut out)?;
            while end - start < total {
                if read_more(stream, &mut buf, &mut start, &mut end, total)? == 0 {
                    return Ok(answered); // closed in the middle of a body
                }
            }
        }
        let body = &buf[start + request.head_len..start + total];
        route(&request, body, files, &mut out);
        start += total;
        answered += 1;
        if !request.keep_alive {
            send(stream, &mut out)?;
            return Ok(answered);
        }
        // A deep pipeline must neither pile its answers up in memory nor keep the worker
        // from the other connections (green threads are not preempted): send every
        // OUT_LIMIT bytes, and give the worker away every YIELD_EVERY requests.
        if out.len() >= OUT_LIMIT {
            send(stream, &mut out)?;
        }
        if answered.is_multiple_of(YIELD_EVERY) {
            weft::yield_now();
        }
        if start == end && buf.len() > 64 * 1024 {
            buf = vec![0u8; 8 * 1024]; // a large body's room is not kept for the next request
            (start, end) = (0, 0);
        }
    }
}

/// Writes and empties `out`, if it holds anything.
fn send<S: Write>(stream: &mut S, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    stream.write_all(out)?;
    stream.flush()?;
    out.clear();
    Ok(())
}

/// Parses one request from the front of `input`: `Ok(None)` if it is incomplete.
fn parse(input: &[u8]) -> Result<Option<Request>, String> {
    if input.is_empty() {
        return Ok(None);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let http11 = req.version == Some(1);
    let mut request = Request {
        method: req.method.unwrap_or("").to_owned(),
        path: req.path.unwrap_or("").to_owned(),
        head_len,
        body_len: 0,
        keep_alive: http11,
        expects_continue: false,
        chunked: false,
    };
    let mut content_length = None;
    for header in req.headers.iter() {
        let name = header.name;
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted);
        if !(is("content-length") || is("connection") || is("transfer-encoding") || is("expect")) {
            continue; // the others are not read, so their bytes do not matter
        }
        let value = std::str::from_utf8(header.value)
            .map_err(|_| format!("non-UTF-8 {name} header"))?
            .trim();
        if is("content-length") {
            // Digits only (no sign), and one value: two disagreeing lengths are how requests
            // get smuggled past a front proxy.
            let length = value
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| value.parse::<usize>().ok())
                .flatten()
                .ok_or_else(|| format!("bad Content-Length {value:?}"))?;
            if content_length.replace(length).is_some_and(|l| l != length) {
                return Err("conflicting Content-Length headers".into());
            }
        } else if is("connection") {
            // A list of tokens: `close, TE` asks to close too.
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    request.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                    request.keep_alive = true;
                }
            }
        } else if is("transfer-encoding") {
            request.chunked = true;
        } else if value.eq_ignore_ascii_case("100-continue") {
            // HTTP/1.0 clients must not be sent an interim response.
            request.expects_continue = http11;
        } else {
            return Err(format!("unsupported Expect {value:?}"));
        }
    }
    request.body_len = content_length.unwrap_or(0);
    Ok(Some(request))
}

/// Reads more input after `buf[start..end]`, first moving it to the front and growing the
/// buffer so that at least `want` bytes fit. Returns what `read` returned.
fn read_more<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    start: &mut usize,
    end: &mut usize,
    want: usize,
) -> io::Result<usize> {
    if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    }
    if buf.len() < want.max(*end + 1) {
        buf.resize(want.max(*end + 4096), 0);
    }
    let n = stream.read(&mut buf[*end..])?;
    *end += n;
    Ok(n)
}

/// Appends the answer to `request` to `out`.
fn route(request: &Request, body: &[u8], files: &Path, out: &mut Vec<u8>) {
    let head_only = request.method == "HEAD";
    let method_ok = |allowed: &[&str]| allowed.contains(&request.method.as_str());
    let path = request.path.split('?').next().unwrap_or("");
    let (status, content_type, content): (&str, &str, std::borrow::Cow<[u8]>) =
        if path == "/" && method_ok(&["GET", "HEAD"]) {
            ("200 OK", "text/plain", b"Hello, World!"[..].into())
        } else if path == "/echo" && method_ok(&["POST", "PUT"]) {
            ("200 OK", "application/octet-stream", body.into())
        } else if let Some(name) = path.strip_prefix("/files/") {
            if !method_ok(&["GET", "HEAD"]) {
                (
                    "405 Method Not Allowed",
                    "text/plain",
                    b"GET or HEAD only\n"[..].into(),
                )
            } else {
                file(files, name)
            }
        } else if path == "/" || path == "/echo" {
            (
                "405 Method Not Allowed",
                "text/plain",
                b"wrong method\n"[..].into(),
            )
        } else {
            ("404 Not Found", "text/plain", b"not found\n"[..].into())
        };
    respond(
        out,
        status,
        content_type,
        &content,
        head_only,
        request.keep_alive,
    );
}

/// Reads `files/name` with `weft::fs` (page-cache hits on the worker, the rest on the
/// blocking pool), refusing any name that could leave `files`.
fn file(files: &Path, name: &str) -> (&'static str, &'static str, std::borrow::Cow<'static, [u8]>) {
    let escapes = name.is_empty()
        || name.starts_with('/')
        || name.split(['/', '\\']).any(|segment| segment == "..")
        || name.contains('\0');
    if escapes {
        return ("403 Forbidden", "text/plain", b"forbidden\n"[..].into());
    }
    match weft::fs::read(files.join(name)) {
        Ok(bytes) => ("200 OK", "application/octet-stream", bytes.into()),
        Err(e) => match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::IsADirectory => {
                ("404 Not Found", "text/plain", b"not found\n"[..].into())
            }
            io::ErrorKind::PermissionDenied => {
                ("403 Forbidden", "text/plain", b"forbidden\n"[..].into())
            }
            _ => (
                "500 Internal Server Error",
                "text/plain",
                format!("{e}\n").into_bytes().into(),
            ),
        },
    }
}

/// Appends one response to `out`.
fn respond(
    out: &mut Vec<u8>,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    keep_alive: bool,
) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nServer: weft\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// Sends `out` followed by a final error response, which closes the connection.
fn close_with<S: Write>(stream: &mut S, out: &mut Vec<u8>, status: &str) -> io::Result<()> {
    let reason = status.split(" (").next().unwrap_or(status);
    respond(
        out,
        reason,
        "text/plain",
        format!("{status}\n").as_bytes(),
        false,
        false,
    );
    stream.write_all(out)?;
    stream.flush()
}
