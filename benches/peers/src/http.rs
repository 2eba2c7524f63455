//! The per-connection work every server does, written once: the echo loop and the HTTP
//! keep-alive loop for blocking-style runtimes (weft, may, std), and the request handling the
//! tokio versions share. The HTTP response is byte-for-byte the shape may_minihttp sends
//! (status line, `Server`, `Date`, `Content-Length`), and requests are parsed with the same
//! `httparse` it uses, so all HTTP servers do the same work.

use std::io::{Read, Write};

/// One keep-alive response. The date is fixed; may_minihttp refreshes its copy once a second
/// from a background thread, which costs nothing per request either.
pub const RESPONSE: &[u8] = b"HTTP/1.1 200 Ok\r\nServer: M\r\nDate: Sun, 22 Nov 2026 12:00:00 GMT\r\nContent-Length: 13\r\n\r\nHello, world!";

/// The read buffer of every connection, echo or HTTP.
pub const BUF: usize = 4096;

/// Parses every complete request at the start of `input`, appends one response per request
/// to `out`, and returns how many bytes of `input` they used; `None` for a malformed request
/// (the caller closes the connection).
pub fn answer(input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut used = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&input[used..]) {
            Ok(httparse::Status::Complete(len)) => {
                used += len;
                out.extend_from_slice(RESPONSE);
            }
            Ok(httparse::Status::Partial) => return Some(used),
            Err(_) => return None,
        }
    }
}

/// Echoes everything it reads until the peer closes or an error.
pub fn echo_blocking<S: Read + Write>(mut stream: S) {
    let mut buf = [0u8; BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Serves keep-alive (and pipelined) requests until the peer closes, an error, or a request
/// that does not fit the buffer.
pub fn http_blocking<S: Read + Write>(mut stream: S) {
    let mut input = [0u8; BUF];
    let mut len = 0;
    let mut out = Vec::with_capacity(BUF);
    loop {
        if len == input.len() {
            return; // a request larger than 4 KiB: not this benchmark's traffic
        }
        match stream.read(&mut input[len..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
        let Some(used) = answer(&input[..len], &mut out) else {
            return;
        };
        input.copy_within(used..len, 0);
        len -= used;
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_whole_requests_only() {
        let one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut input = one.repeat(2);
        input.extend_from_slice(b"GET / HT");
        let mut out = Vec::new();
        assert_eq!(answer(&input, &mut out), Some(2 * one.len()));
        assert_eq!(out, RESPONSE.repeat(2));
        assert_eq!(answer(b"\x01\x02 nonsense\r\n\r\n", &mut out), None);
    }
}
