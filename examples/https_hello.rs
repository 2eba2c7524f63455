//! The `http_hello` server behind TLS: `rustls`'s synchronous `StreamOwned` runs unchanged
//! over a `weft::net::TcpStream`, so a third-party blocking protocol library parks green
//! threads instead of blocking workers. The certificate is self-signed for `localhost`,
//! generated at start with `rcgen`, and written to a PEM file whose path is printed.
//!
//! ```text
//! cargo run --release --example https_hello -- [PORT [WORKERS [DIR]]]
//! cargo run --release --example https_hello              # 127.0.0.1:8443
//! curl -k https://127.0.0.1:8443/                        # Hello, World!
//! curl --cacert /tmp/weft-https-hello-PID.pem https://localhost:8443/   # path printed
//! wrk -t2 -c100 -d10s https://127.0.0.1:8443/
//! ```
//!
//! Arguments as for `http_hello`. The TLS handshake and record encryption run on the
//! connection's green thread; the socket waits park it on the reactor.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::http;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use weft::net::TcpStream;

const USAGE: &str = "https_hello [PORT [WORKERS [DIR]]]";

fn main() {
    let args = common::args(8443, USAGE);
    let files: Arc<Path> = PathBuf::from(args.rest.first().map_or(".", |d| d.as_str())).into();
    let tls = Arc::new(tls_config());
    let listener = common::listen("https_hello", &args.addr);
    weft::run(move || {
        common::serve_forever(&listener, move |stream, _peer| {
            connection(stream, tls.clone(), &files)
        })
    })
}

/// A certificate for `localhost` and 127.0.0.1, saved as PEM for clients to trust.
fn tls_config() -> ServerConfig {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("generate a certificate");
    let pem_path =
        std::env::temp_dir().join(format!("weft-https-hello-{}.pem", std::process::id()));
    if let Err(e) = std::fs::write(&pem_path, certified.cert.pem()) {
        eprintln!("https_hello: cannot save the certificate: {e}");
    } else {
        println!("https_hello: certificate in {}", pem_path.display());
    }
    let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a fresh key pair matches its certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// One connection's green thread: TLS over the weft stream, then the shared HTTP loop.
fn connection(stream: TcpStream, tls: Arc<ServerConfig>, files: &Path) {
    let _ = stream.set_nodelay(true);
    let session = match ServerConnection::new(tls) {
        Ok(session) => session,
        Err(e) => return eprintln!("https_hello: {e}"),
    };
    let mut tls_stream = StreamOwned::new(session, stream);
    let served = http::serve(&mut tls_stream, files);
    if let Err(e) = &served {
        // Clients that hang up without close_notify (wrk, curl -k after the body) and
        // failed handshakes (an untrusting client) are routine; anything else is news.
        if !matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::InvalidData
        ) {
            eprintln!("https_hello: {e}");
        }
    }
    // Say goodbye properly: send close_notify (or whatever alert is queued) without
    // waiting to read anything, then a lingering close as in http_hello.
    tls_stream.conn.send_close_notify();
    let _ = weft::timeout(Duration::from_secs(1), || {
        while tls_stream.conn.wants_write() {
            if tls_stream.conn.write_tls(&mut tls_stream.sock).is_err() {
                break;
            }
        }
    });
    common::lingering_close(&tls_stream.sock);
}
