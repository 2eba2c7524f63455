//! The examples, driven by real clients: each example runs as a child process on a free
//! loopback port (it prints the port it got), and curl, wrk, ab, nc, rustls or tungstenite
//! talk to it. `cargo test` builds the examples before it runs this file; a missing binary
//! (after `cargo test --test examples` alone) fails with the command that builds it.
//!
//! wrk, ab, nc and curl come from `.ci/run`, which installs them when missing. Where one
//! still is not installed, its test prints SKIPPED and passes.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::watchdog;

/// A running example; killed when dropped.
struct Example {
    child: Child,
    addr: SocketAddr,
    /// What it printed up to and including its "listening on" line.
    banner: Vec<String>,
    /// The rest of its output. Held so that the thread reading the pipe keeps reading: a
    /// full pipe would block the example's next print.
    _later: mpsc::Receiver<String>,
}

impl Example {
    /// Starts `examples/NAME` with `args` and waits for its "listening on ADDR" line.
    fn start(name: &str, args: &[&str]) -> Example {
        let path = example_path(name);
        let mut child = Command::new(&path)
            .args(args)
            .stdin(Stdio::piped()) // closed when the test ends, so no example reads a tty
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let addr = loop {
            let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} never said where it listens: {banner:?}");
            };
            banner.push(line.clone());
            if let Some((_, addr)) = line.split_once("listening on ") {
                break addr.parse().expect("an address after 'listening on'");
            }
        };
        Example {
            child,
            addr,
            banner,
            _later: lines,
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.addr.port())
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where cargo put the example binary: `target/<profile>/examples/NAME`, next to the
/// `deps` directory this test binary runs from.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples; after `cargo test --test examples` \
         alone, run `cargo build --examples` first",
        path.display()
    );
    path
}

/// Runs an example that is not a server to completion (killing it after `secs` seconds)
/// and returns its stdout.
fn run_to_end(name: &str, args: &[&str], secs: u64) -> String {
    let path = example_path(name);
    let child = Command::new(&path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) on the child's pid: it cannot have been reaped (and the pid
            // reused) while `wait_with_output` still waits for it.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{name} did not finish within {secs} s");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name}: {:?}\n{stdout}\n{}",
        output.status,
        common::stderr_of(&output)
    );
    stdout
}

/// Whether the tool is installed; prints SKIPPED when it is not.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: {tool} is not installed (.ci/run installs it)");
    }
    found
}

/// Runs a client command to completion (bounded by `secs`) and returns its stdout,
/// failing the test on a non-zero exit.
fn client(program: &str, args: &[&str], secs: u64) -> String {
    let (program, args) = (
        program.to_owned(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    watchdog(secs, move || {
        let output = Command::new(&program).args(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{program} {args:?}: {:?}\n{stdout}\n{}",
            output.status,
            common::stderr_of(&output)
        );
        stdout
    })
}

/// curl's body and status code for one request (`extra` are more curl arguments).
fn curl(url: &str, extra: &[&str]) -> (String, u16) {
    let mut args = vec!["-s", "--max-time", "30", "-w", "\n%{http_code}"];
    args.extend_from_slice(extra);
    args.push(url);
    let out = client("curl", &args, 60);
    let (body, code) = out.rsplit_once('\n').unwrap();
    (body.to_owned(), code.trim().parse().unwrap())
}

/// A directory with one file for `/files/`, and a secret beside it that must stay out of
/// reach; removed when dropped.
struct Site {
    root: PathBuf,
    files: PathBuf,
}

impl Site {
    fn new(tag: &str) -> Site {
        let root = std::env::temp_dir().join(format!("weft-examples-{tag}-{}", std::process::id()));
        let files = root.join("files");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("hello.txt"), "a file served by weft::fs\n").unwrap();
        std::fs::write(root.join("secret"), "must not be served\n").unwrap();
        Site { root, files }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[test]
fn http_hello_answers_curl() {
    if !have("curl") {
        return;
    }
    let site = Site::new("curl");
    let files = &site.files;
    let server = Example::start("http_hello", &["0", "2", files.to_str().unwrap()]);
    assert_eq!(
        curl(&server.url("http", "/"), &[]),
        ("Hello, World!".into(), 200)
    );
    assert_eq!(
        curl(&server.url("http", "/files/hello.txt"), &[]),
        ("a file served by weft::fs\n".into(), 200)
    );
    assert_eq!(curl(&server.url("http", "/files/missing"), &[]).1, 404);
    // Path traversal, sent as is (curl would otherwise squash the dots itself).
    let (body, code) = curl(&server.url("http", "/files/../secret"), &["--path-as-is"]);
    assert_eq!(code, 403, "{body}");
    // An absolute name, and a backslash: refused too. Percent-encoding is not decoded, so
    // an encoded `..` is just a name that does not exist.
    for name in [
        "/files//etc/passwd",
        "/files/..%5Csecret",
        "/files/%2e%2e/secret",
    ] {
        let (body, code) = curl(&server.url("http", name), &["--path-as-is"]);
        assert!(code == 403 || code == 404, "{name}: {code} {body}");
        assert!(
            !body.contains("must not be served") && !body.contains("root:"),
            "{body}"
        );
    }
    let answer = raw_exchange(
        server.addr,
        b"GET /files/..\\secret HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(curl(&server.url("http", "/nowhere"), &[]).1, 404);
    // A request body with Content-Length, echoed, big enough to arrive in parts.
    let big = site.root.join("big.txt");
    std::fs::write(&big, "x".repeat(200_000)).unwrap();
    let (echoed, code) = curl(
        &server.url("http", "/echo"),
        &[
            "--data-binary",
            &format!("@{}", big.display()),
            "-H",
            "Expect: 100-continue",
        ],
    );
    assert_eq!((echoed.len(), code), (200_000, 200));
    // HEAD: the headers alone.
    let head = client("curl", &["-sI", &server.url("http", "/")], 60);
    assert!(head.contains("Content-Length: 13"), "{head}");
}

/// Sends `request` on a fresh connection and returns everything until the server closes.
fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let request = request.to_vec();
    watchdog(60, move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(&request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    })
}

#[test]
fn http_hello_expect_continue() {
    let server = Example::start("http_hello", &["0", "1"]);
    let addr = server.addr;
    watchdog(60, move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\
                  Connection: close\r\n\r\n",
            )
            .unwrap();
        // The interim answer comes before the body is sent.
        let mut interim = [0u8; 25];
        stream.read_exact(&mut interim).unwrap();
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        stream.write_all(b"hello").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nhello"), "{answer}");
    });
}

#[test]
fn http_hello_pipelining_close_and_bad_requests() {
    let server = Example::start("http_hello", &["0", "1"]);
    // Three pipelined requests in one write; the last asks to close, so the server's EOF
    // ends the read.
    let answer = raw_exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
          POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nfive!\
          GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 3, "{answer}");
    assert!(answer.contains("\r\n\r\nfive!"), "{answer}");
    assert!(answer.ends_with("Hello, World!"), "{answer}");
    // HTTP/1.0 without keep-alive closes after one answer.
    let answer = raw_exchange(server.addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 1, "{answer}");
    // Requests refused with a final answer, after which the connection closes (so each
    // answer holds exactly one response), even with more bytes behind it.
    let refused: [(&[u8], &str); 5] = [
        // Garbage.
        (
            b"NOT HTTP AT ALL\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            "400 Bad Request",
        ),
        // Chunked bodies are not supported: said so, not misread.
        (
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "501",
        ),
        // Two different lengths (a request-smuggling shape), and a signed one.
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "400",
        ),
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: +2\r\n\r\nab",
            "400",
        ),
        // A body declared larger than the limit.
        (
            b"POST /echo HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
            "413",
        ),
    ];
    for (request, status) in refused {
        let answer = raw_exchange(server.addr, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    }
    // A good request, then garbage on the same connection: the answer, then the 400.
    let answer = raw_exchange(
        server.addr,
        b"GET / HTTP/1.1\r\n\r\nGET /\x01 HTTP/1.1\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("HTTP/1.1 400 Bad Request"), "{answer}");
    // `Connection` is a list: `close, TE` closes too.
    let answer = raw_exchange(
        server.addr,
        b"GET / HTTP/1.1\r\nConnection: close, TE\r\n\r\n",
    );
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 1, "{answer}");
    // A deep pipeline (2,000 requests in one write) is answered in full.
    let answer = raw_exchange(
        server.addr,
        &[
            b"GET / HTTP/1.1\r\n\r\n".repeat(1999),
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        ]
        .concat(),
    );
    assert_eq!(answer.matches("Hello, World!").count(), 2000);
}

/// Runs `wrk -t2 CONNECTIONS DURATION url` and asserts that it reported requests and no
/// errors (socket errors or non-2xx answers); prints the rate.
fn wrk_without_errors(url: &str, connections: &str, duration: &str) {
    let out = client("wrk", &["-t2", connections, duration, url], 120);
    assert!(out.contains(" requests in "), "{out}");
    assert!(!out.contains("Socket errors"), "{out}");
    assert!(!out.contains("Non-2xx"), "{out}");
    let rate = common::line_with(&out, "Requests/sec:");
    eprintln!("{url} under wrk -t2 {connections} {duration} (debug build): {rate}");
}

#[test]
fn http_hello_sustains_wrk() {
    if !have("wrk") {
        return;
    }
    let server = Example::start("http_hello", &["0", "2"]);
    wrk_without_errors(&server.url("http", "/"), "-c256", "-d10s");
}

#[test]
fn http_hello_sustains_ab_keep_alive() {
    if !have("ab") {
        return;
    }
    let server = Example::start("http_hello", &["0", "2"]);
    let out = client(
        "ab",
        &["-q", "-k", "-c100", "-n50000", &server.url("http", "/")],
        300,
    );
    assert!(out.contains("Complete requests:      50000"), "{out}");
    assert!(out.contains("Failed requests:        0"), "{out}");
    assert!(out.contains("Keep-Alive requests:    50000"), "{out}");
    assert!(!out.contains("Non-2xx"), "{out}");
}

/// A rustls client that trusts only the certificate the server saved.
fn tls_client(server: &Example) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let pem = server
        .banner
        .iter()
        .find_map(|l| l.split_once("certificate in ").map(|(_, p)| p.to_owned()))
        .expect("https_hello prints where its certificate is");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(("localhost", server.addr.port())).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    rustls::StreamOwned::new(session, socket)
}

#[test]
fn https_hello_answers_rustls_curl_and_wrk() {
    let server = Example::start("https_hello", &["0", "2"]);
    // rustls as the client, verifying the server's certificate; two requests on one
    // connection, the second asking to close.
    let mut tls = tls_client(&server);
    let answer = watchdog(60, move || {
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        tls.read_to_string(&mut answer).unwrap(); // the server ends with close_notify
        answer
    });
    assert_eq!(answer.matches("Hello, World!").count(), 2, "{answer}");
    if have("curl") {
        assert_eq!(
            curl(&server.url("https", "/"), &["-k"]),
            ("Hello, World!".into(), 200)
        );
    }
    if have("wrk") {
        wrk_without_errors(&server.url("https", "/"), "-c64", "-d5s");
    }
}

#[test]
fn ws_echo_echoes_tungstenite_clients() {
    use tungstenite::Message;
    let server = Example::start("ws_echo", &["0", "2"]);
    let url = server.url("ws", "/");
    watchdog(120, move || {
        // 20 clients at once, on std threads, each with text, binary and a ping.
        let clients: Vec<_> = (0..20)
            .map(|i| {
                let url = url.clone();
                std::thread::spawn(move || {
                    let (mut ws, _) = tungstenite::connect(&url).unwrap();
                    let text = format!("hello from client {i}");
                    let binary: Vec<u8> = (0..100_000u32).map(|b| (b * i) as u8).collect();
                    ws.send(Message::text(text.clone())).unwrap();
                    ws.send(Message::binary(binary.clone())).unwrap();
                    ws.send(Message::Ping(b"are you there".to_vec().into()))
                        .unwrap();
                    let mut got = Vec::new();
                    while got.len() < 3 {
                        let m = ws.read().unwrap();
                        if matches!(m, Message::Text(_) | Message::Binary(_) | Message::Pong(_)) {
                            got.push(m);
                        }
                    }
                    assert_eq!(got[0], Message::text(text));
                    assert_eq!(got[1], Message::binary(binary));
                    assert_eq!(got[2], Message::Pong(b"are you there".to_vec().into()));
                    ws.close(None).unwrap();
                    // The server completes the closing handshake.
                    loop {
                        match ws.read() {
                            Ok(_) => {}
                            Err(tungstenite::Error::ConnectionClosed) => break,
                            Err(e) => panic!("client {i}: {e}"),
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}

/// An `nc` client of the chat server, with its output lines arriving on a channel.
struct Nc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Nc {
    fn connect(addr: SocketAddr) -> Nc {
        let mut child = Command::new("nc")
            .args(["127.0.0.1", &addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Nc { child, lines }
    }

    fn say(&mut self, line: &str) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{line}").unwrap();
    }

    /// Waits for a line containing `text` and returns it.
    fn expect(&self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line with {text:?}: {e}"),
            }
        }
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn chat_between_nc_clients() {
    if !have("nc") {
        return;
    }
    let server = Example::start("chat", &["0", "2"]);
    let mut alice = Nc::connect(server.addr);
    let me = alice.expect("welcome, you are ");
    let alice_name = me.rsplit(' ').next().unwrap().to_owned();
    let mut bob = Nc::connect(server.addr);
    let me = bob.expect("welcome, you are ");
    let bob_name = me.rsplit(' ').next().unwrap().to_owned();
    // Bob is in the room once Alice has heard him join.
    alice.expect(&format!("{bob_name} joined"));
    alice.say("hello bob");
    assert_eq!(bob.expect("hello bob"), format!("{alice_name}: hello bob"));
    bob.say("hi alice");
    assert_eq!(alice.expect("hi alice"), format!("{bob_name}: hi alice"));
    drop(bob);
    alice.expect(&format!("{bob_name} left"));
}

/// Reads lines from `stream` until EOF or an error; returns them.
fn read_lines_until_closed(stream: TcpStream) -> Vec<String> {
    BufReader::new(stream)
        .lines()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn chat_drops_a_slow_client_and_keeps_everyone_else_whole() {
    use weft::net::socket2::{Domain, Socket, Type};
    const LINES: usize = 50_000;
    // A patience of 3 s: long enough that no scheduling hiccup of a loaded machine makes the
    // fast client look stalled.
    let server = Example::start("chat", &["0", "2", "3000"]);
    let join = |stream: &TcpStream| {
        let mut first = String::new();
        BufReader::new(stream).read_line(&mut first).unwrap();
        assert!(first.contains("welcome"), "{first}");
    };
    watchdog(300, move || {
        // The slow client never reads, with a small receive buffer so it fills soon.
        let slow = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        slow.set_recv_buffer_size(4096).unwrap();
        slow.connect(&server.addr.into()).unwrap();
        let slow = TcpStream::from(slow);
        join(&slow); // its one read: from here on it never reads until it was dropped
        let fast = TcpStream::connect(server.addr).unwrap();
        join(&fast);
        let talker = TcpStream::connect(server.addr).unwrap();
        join(&talker);
        // The fast client reads everything until its connection closes, and says when
        // the talker's last line has come.
        let last = format!(": {:08} ", LINES - 1);
        let (heard_last, last_arrived) = mpsc::channel(); // the last line, and the drop notice
        let reader = {
            let fast = fast.try_clone().unwrap();
            std::thread::spawn(move || {
                let mut lines = Vec::new();
                for line in BufReader::new(fast).lines().map_while(Result::ok) {
                    if line.contains(&last) || line.contains("was too slow and was dropped") {
                        let _ = heard_last.send(());
                    }
                    lines.push(line);
                }
                lines
            })
        };
        // The talker says LINES lines of 200 bytes (10 MB): more than the slow client's
        // buffers and queue can hold.
        let mut out = std::io::BufWriter::new(&talker);
        for i in 0..LINES {
            writeln!(out, "{i:08} {}", "m".repeat(190)).unwrap();
        }
        out.flush().unwrap();
        drop(out);
        // Wait for the last line and for the notice that the slow client was dropped (it
        // reads nothing until then, so its writer makes no progress for a second).
        for _ in 0..2 {
            if last_arrived.recv().is_err() {
                let lines = reader.join().unwrap();
                panic!(
                    "the fast client's connection ended early; {} lines, ending {:?}",
                    lines.len(),
                    &lines[lines.len().saturating_sub(3)..]
                );
            }
        }
        talker.shutdown(Shutdown::Both).unwrap();
        // The slow client has been dropped: its reads reach the end (EOF or reset).
        let slow_lines = read_lines_until_closed(slow);
        assert!(
            slow_lines.len() < LINES,
            "all {} lines reached the slow client: it was never dropped",
            slow_lines.len()
        );
        fast.shutdown(Shutdown::Write).unwrap();
        // Give the server the fast client's goodbye; its connection then closes.
        let lines = reader.join().unwrap();
        let said: Vec<&String> = lines.iter().filter(|l| l.contains(": ")).collect();
        assert_eq!(said.len(), LINES, "the fast client lost lines");
        for (i, line) in said.iter().enumerate() {
            assert!(line.contains(&format!(": {i:08} ")), "line {i} is {line}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.contains("was too slow and was dropped")),
            "no notice of the drop in {} lines",
            lines.len()
        );
    });
}

#[test]
fn proxy_forwards_to_the_echo_example_byte_for_byte() {
    let echo = Example::start("echo", &["127.0.0.1:0"]);
    let upstream = echo.addr.to_string();
    let proxy = Example::start("proxy", &["0", "2", &upstream]);
    let addr = proxy.addr;
    watchdog(120, move || {
        // 8 clients at once, 1 MiB each, written while the echo comes back.
        let clients: Vec<_> = (0..8u8)
            .map(|i| {
                std::thread::spawn(move || {
                    let stream = TcpStream::connect(addr).unwrap();
                    let sent: Vec<u8> = (0..1 << 20).map(|b: u32| (b % 251) as u8 ^ i).collect();
                    let writer = {
                        let (mut stream, sent) = (stream.try_clone().unwrap(), sent.clone());
                        std::thread::spawn(move || {
                            stream.write_all(&sent).unwrap();
                            stream.shutdown(Shutdown::Write).unwrap();
                        })
                    };
                    let mut back = Vec::new();
                    (&stream).read_to_end(&mut back).unwrap(); // EOF: the half-close came back
                    writer.join().unwrap();
                    assert!(
                        back == sent,
                        "client {i}: {} of {} bytes",
                        back.len(),
                        sent.len()
                    );
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
}

#[test]
fn proxy_passes_half_closes_both_ways() {
    // An upstream that greets, half-closes, then still reads what the client sends.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap().to_string();
    let received = std::thread::spawn(move || {
        let (mut conn, _) = upstream.accept().unwrap();
        conn.write_all(b"hello, then silence").unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        got
    });
    let proxy = Example::start("proxy", &["0", "1", &upstream_addr]);
    let addr = proxy.addr;
    let received = watchdog(60, move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut greeting = String::new();
        stream.read_to_string(&mut greeting).unwrap(); // EOF: the server's half-close
        assert_eq!(greeting, "hello, then silence");
        // Our direction is still open through the proxy.
        stream.write_all(b"late words").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        received.join().unwrap()
    });
    assert_eq!(received, "late words");
}

#[test]
fn crawler_fetches_every_page_three_ways() {
    // 200 pages as in the default run, with a 20 ms delay to keep the sequential crawl short.
    let out = run_to_end("crawler", &["0", "2", "200", "20"], 300);
    for mode in ["sequential", "8 OS threads", "green threads"] {
        let line = common::line_with(&out, &format!("{mode}: "));
        assert!(line.contains(": 200/200 pages in "), "{out}");
    }
}

#[test]
fn patterns_print_what_each_model_computed() {
    let out = run_to_end("patterns", &["2"], 120);
    assert!(
        out.contains("queue: 4 consumers doubled 1000 jobs, total 1001000"),
        "{out}"
    );
    assert!(
        out.contains(
            "actor: 100 deposits of 10; withdraw 5000 -> Err(1000); withdraw 400 -> Ok(600); \
             balance 600, final 600"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "pub/sub: 30 messages on 3 topics; sports fan got 10, news reader got 10, \
             reads everything got 30"
        ),
        "{out}"
    );
}

#[test]
fn reuseport_spreads_connections_over_processes() {
    let mut server = Example::start("reuseport", &["0", "1", "3"]);
    let addr = server.addr;
    let pids = watchdog(120, move || {
        (0..200)
            .map(|_| {
                let answer = raw_exchange(addr, b"GET / HTTP/1.1\r\n\r\n");
                assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
                let pid = answer.rsplit("served by process ").next().unwrap();
                pid.trim().parse::<u32>().unwrap()
            })
            .collect::<HashSet<u32>>()
    });
    // 200 connections over 3 listeners: all on one would take odds of 3^-199.
    assert!(pids.len() >= 2, "one process served everything: {pids:?}");
    assert!(pids.contains(&server.child.id()), "{pids:?}");
    // The other processes leave with the first (a zombie waiting for init counts as gone).
    let _ = server.child.kill();
    let _ = server.child.wait();
    let first = server.child.id();
    let others: Vec<u32> = pids.into_iter().filter(|&p| p != first).collect();
    let running = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").starts_with(" Z"))
    };
    watchdog(60, move || {
        while others.iter().any(running) {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}
