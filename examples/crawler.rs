//! Why green threads exist, in one run: fetch the same pages three ways and compare the
//! wall times. A local HTTP server (weft, in this process) answers each page after a delay,
//! like a slow remote site; the crawler fetches every page from `localhost` by host name
//!
//! 1. sequentially, one page after another, on this OS thread;
//! 2. with a pool of 8 OS threads;
//! 3. with one green thread per page.
//!
//! ```text
//! cargo run --release --example crawler -- [PORT [WORKERS [PAGES [DELAY_MS]]]]
//! cargo run --release --example crawler                  # 200 pages, 100 ms each
//! ```
//!
//! With the defaults, the sequential crawl takes about 200 × 100 ms = 20 s, the pool about
//! 200 / 8 × 100 ms = 2.5 s, and the green threads about one delay: waiting costs a green
//! thread a parked stack, not an OS thread. `PORT` is the local server's (default: any
//! free port). Each page is checked: status 200, the length announced, and its own number
//! in the body.

#[path = "common/mod.rs"]
mod common;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weft::net::TcpStream;

const USAGE: &str = "crawler [PORT [WORKERS [PAGES [DELAY_MS]]]]";
/// OS threads in the pool mode.
const POOL: usize = 8;

fn main() {
    let args = common::args(0, USAGE);
    let number = |i: usize, default: u64| match args.rest.get(i) {
        None => default,
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("not a number: {s:?}\nusage: {USAGE}");
            std::process::exit(2)
        }),
    };
    let pages = number(0, 200) as usize;
    let delay = Duration::from_millis(number(1, 100));

    let listener = common::listen("crawler", &args.addr);
    let port = listener.local_addr().unwrap().port();
    weft::spawn(move || site(listener, delay));

    crawl("sequential", pages, || {
        (0..pages)
            .filter(|&page| check(std::net::TcpStream::connect(("localhost", port)), page))
            .count()
    });
    crawl(&format!("{POOL} OS threads"), pages, || {
        let next = AtomicUsize::new(0);
        let fetched = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..POOL {
                s.spawn(|| loop {
                    let page = next.fetch_add(1, Ordering::Relaxed);
                    if page >= pages {
                        break;
                    }
                    if check(std::net::TcpStream::connect(("localhost", port)), page) {
                        fetched.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        fetched.into_inner()
    });
    crawl("green threads", pages, || {
        weft::run(|| {
            let handles: Vec<_> = (0..pages)
                .map(|page| {
                    weft::spawn(move || check(TcpStream::connect(("localhost", port)), page))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .filter(|fetched| matches!(fetched, Ok(true)))
                .count()
        })
    });
}

/// Runs one crawl and prints `NAME: FETCHED/PAGES pages in TIME`.
fn crawl(name: &str, pages: usize, f: impl FnOnce() -> usize) {
    let start = Instant::now();
    let fetched = f();
    println!("{name}: {fetched}/{pages} pages in {:.2?}", start.elapsed());
}

/// Fetches page `page` over a fresh connection and checks it; reports failures.
fn check<S: Read + Write>(stream: io::Result<S>, page: usize) -> bool {
    match stream.and_then(|s| fetch(s, page)) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("crawler: page {page}: {e}");
            false
        }
    }
}

fn fetch<S: Read + Write>(mut stream: S, page: usize) -> io::Result<()> {
    write!(
        stream,
        "GET /page/{page} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut parsed = httparse::Response::new(&mut headers);
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let body_at = match parsed.parse(&response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("truncated response".into())),
        Err(e) => return Err(bad(e.to_string())),
    };
    if parsed.code != Some(200) {
        return Err(bad(format!("status {:?}", parsed.code)));
    }
    let length = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok());
    let body = &response[body_at..];
    if length != Some(body.len()) || !body.ends_with(page_body(page).as_bytes()) {
        return Err(bad(format!("wrong body ({} bytes)", body.len())));
    }
    Ok(())
}

fn page_body(page: usize) -> String {
    format!("<html><body>page {page}</body></html>\n")
}

/// The slow site: each request is answered after `delay`, then the connection closes.
fn site(listener: weft::net::TcpListener, delay: Duration) -> ! {
    common::serve_forever(&listener, move |mut stream, _| {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        let path = loop {
            let Ok(n @ 1..) = stream.read(&mut buf) else {
                return;
            };
            request.extend_from_slice(&buf[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut parsed = httparse::Request::new(&mut headers);
            match parsed.parse(&request) {
                Ok(httparse::Status::Complete(_)) => break parsed.path.unwrap_or("").to_owned(),
                Ok(httparse::Status::Partial) if request.len() < 16 * 1024 => {}
                _ => return,
            }
        };
        weft::sleep(delay);
        let (status, body) = match path.strip_prefix("/page/").map(str::parse::<usize>) {
            Some(Ok(page)) => ("200 OK", page_body(page)),
            _ => ("404 Not Found", String::from("no such page\n")),
        };
        // One write (the whole answer), then a lingering close (see common::lingering_close).
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
        common::lingering_close(&stream);
    })
}
