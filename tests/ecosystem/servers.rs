//! The real servers the cases talk to, each started on loopback by this process and stopped
//! (killed and its data directory removed) when the suite ends: redis-server, memcached,
//! PostgreSQL and MariaDB from Debian's packages (`.ci/run` installs them), and a slow HTTP
//! server and a WebSocket echo server on plain threads.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the slow servers take to answer: one "operation".
pub const OP: Duration = Duration::from_millis(200);

/// A server process, killed on drop.
pub struct Server {
    child: Child,
    dir: Option<PathBuf>,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    let probe = TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

fn wait_listening(port: u16, what: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited with {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} did not listen on {port} within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-eco-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what} could not start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

pub fn redis() -> Result<Server, String> {
    let port = free_port();
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server could not start: {e}"))?;
    wait_listening(port, "redis-server", &mut child)?;
    Ok(Server {
        child,
        dir: None,
        port,
    })
}

pub fn memcached() -> Result<Server, String> {
    let port = free_port();
    let mut child = Command::new("memcached")
        .args([
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-u",
            "root",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("memcached could not start: {e}"))?;
    wait_listening(port, "memcached", &mut child)?;
    Ok(Server {
        child,
        dir: None,
        port,
    })
}

/// The newest installed PostgreSQL's binaries.
fn pg_bin() -> Result<PathBuf, String> {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("PostgreSQL is not installed: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no PostgreSQL server binaries".to_owned())
}

/// A throw-away cluster with trust authentication, run as the `postgres` user (PostgreSQL
/// refuses to run as root).
pub fn postgres() -> Result<Server, String> {
    let bin = pg_bin()?;
    let port = free_port();
    let dir = scratch("pg");
    let data = dir.join("data");
    run(
        Command::new("chown").args(["-R", "postgres:postgres", dir.to_str().unwrap()]),
        "chown",
    )?;
    let as_postgres = |program: &Path| {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    };
    run(
        as_postgres(&bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ])
            .args(["--no-sync", "-E", "UTF8"]),
        "initdb",
    )?;
    let mut child = as_postgres(&bin.join("postgres"))
        .args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
        .args(["-h", "127.0.0.1", "-k", dir.to_str().unwrap()])
        .args(["-c", "fsync=off", "-c", "max_connections=100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("postgres could not start: {e}"))?;
    wait_listening(port, "postgres", &mut child)?;
    Ok(Server {
        child,
        dir: Some(dir),
        port,
    })
}

/// A throw-away MariaDB with grant tables skipped (any user connects).
pub fn mariadb() -> Result<Server, String> {
    let port = free_port();
    let dir = scratch("maria");
    let data = dir.join("data");
    run(
        Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg("--skip-test-db"),
        "mariadb-install-db",
    )?;
    // In /usr/sbin, which a CI's PATH may lack.
    let server = if Path::new("/usr/sbin/mariadbd").exists() {
        "/usr/sbin/mariadbd"
    } else {
        "mariadbd"
    };
    let mut child = Command::new(server)
        .args(["--no-defaults", "--user=root", "--skip-grant-tables"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .args(["--bind-address=127.0.0.1", &format!("--port={port}")])
        .args(["--skip-log-bin", "--innodb-buffer-pool-size=16M"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("mariadbd could not start: {e}"))?;
    wait_listening(port, "mariadbd", &mut child)?;
    Ok(Server {
        child,
        dir: Some(dir),
        port,
    })
}

/// An HTTP/1.1 server on plain threads that answers every request after [`OP`] with
/// "hello", then closes. Runs until the process exits.
pub fn slow_http() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                std::thread::sleep(OP);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    port
}

/// A WebSocket server on plain threads that echoes each message after [`OP`].
pub fn slow_ws_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(stream) else {
                    return;
                };
                while let Ok(message) = ws.read() {
                    if message.is_close() {
                        break;
                    }
                    std::thread::sleep(OP);
                    if ws.send(message).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}
