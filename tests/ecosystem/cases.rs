//! The cases. Each runs in a child process on one worker: [`N`] concurrent green threads,
//! each doing one operation of about [`OP`] (or a short burst where the server has no slow
//! operation), while the harness's ticker green thread counts milliseconds.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use crate::servers::OP;

/// Concurrent operations per case.
pub const N: usize = 20;

/// What a case is expected to show.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// The green threads park: the ticker keeps ticking, the wall time is about one
    /// operation.
    Green,
    /// Green, through the blocking pool (weft hands the call, or the user's `offload`, to an
    /// OS thread that runs nothing else).
    HandedOff,
    /// Runs in place by the hooks' rule (stdio, regular files): correct, never a crash; the
    /// worker may block meanwhile.
    InPlace,
    /// Blocks the worker (a wait weft cannot share safely): the watchdog names the syscall
    /// on stderr, and the case still finishes correctly.
    Diagnosed,
    /// A documented limit of the hooks (README, "what it cannot fix"): recorded as it is,
    /// with its workaround as a case of its own; only a hang fails it.
    Limit,
}

pub struct Case {
    pub name: &'static str,
    pub expect: Expect,
    /// The server it needs: "redis", "memcached", "postgres", "mariadb", "http", "ws", or "".
    pub server: &'static str,
    pub run: fn(&Env) -> Result<String, String>,
}

/// Where the servers are (from the environment the harness gives the child).
pub struct Env {
    pub port: u16,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs `op(i)` in [`N`] green threads at once and collects the results in order.
fn concurrently<T: Send + 'static>(
    op: impl Fn(usize) -> Result<T, String> + Send + Sync + 'static,
) -> Result<Vec<T>, String> {
    let op = Arc::new(op);
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let op = op.clone();
            weft::spawn(move || op(i))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().map_err(|_| "a green thread panicked".to_owned())?)
        .collect()
}

fn all_equal<T: PartialEq + std::fmt::Debug>(values: &[T], want: T) -> Result<String, String> {
    match values.iter().find(|v| **v != want) {
        None => Ok(format!("{} × {want:?}", values.len())),
        Some(bad) => Err(format!("got {bad:?}, want {want:?}")),
    }
}

fn pg_url(env: &Env) -> String {
    format!("host=127.0.0.1 port={} user=postgres", env.port)
}

fn pg_sleep(url: &str) -> Result<i32, String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(err)?;
    let row = client
        .query_one("SELECT 1 FROM pg_sleep(0.2)", &[])
        .map_err(err)?;
    Ok(row.get(0))
}

fn postgres_direct(env: &Env) -> Result<String, String> {
    let url = pg_url(env);
    all_equal(&concurrently(move |_| pg_sleep(&url))?, 1)
}

fn postgres_offload(env: &Env) -> Result<String, String> {
    let url = Arc::new(pg_url(env));
    let values = concurrently(move |_| {
        let url = url.clone();
        weft::offload(move || pg_sleep(&url))
    })?;
    all_equal(&values, 1)
}

fn my_opts(env: &Env) -> Result<mysql::Opts, String> {
    mysql::Opts::from_url(&format!("mysql://root@127.0.0.1:{}/", env.port)).map_err(err)
}

fn mysql_conn(env: &Env) -> Result<String, String> {
    use mysql::prelude::Queryable;
    let opts = my_opts(env)?;
    let values = concurrently(move |_| {
        let mut conn = mysql::Conn::new(opts.clone()).map_err(err)?;
        conn.query_first::<i64, _>("SELECT SLEEP(0.2)").map_err(err)
    })?;
    all_equal(&values, Some(0))
}

fn mysql_pool(env: &Env) -> Result<String, String> {
    use mysql::prelude::Queryable;
    let pool = mysql::Pool::new(my_opts(env)?).map_err(err)?;
    let values = concurrently(move |_| {
        let mut conn = pool.get_conn().map_err(err)?;
        conn.query_first::<i64, _>("SELECT SLEEP(0.2)").map_err(err)
    })?;
    all_equal(&values, Some(0))
}

fn redis_url(env: &Env) -> String {
    format!("redis://127.0.0.1:{}/", env.port)
}

fn redis_blpop(env: &Env) -> Result<String, String> {
    let url = redis_url(env);
    let values = concurrently(move |i| {
        let mut con = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .map_err(err)?;
        redis::cmd("BLPOP")
            .arg(format!("weft:empty:{i}"))
            .arg(OP.as_secs_f64())
            .query::<Option<(String, String)>>(&mut con)
            .map_err(err)
    })?;
    all_equal(&values, None)
}

fn redis_shared_mutex(env: &Env) -> Result<String, String> {
    let con = redis::Client::open(redis_url(env).as_str())
        .and_then(|c| c.get_connection())
        .map_err(err)?;
    let con = Arc::new(Mutex::new(con));
    // The lock serialises the green threads: each holds it across a short blocking call,
    // OP / N, so the case takes about one OP when nothing blocks the worker.
    let values = concurrently(move |i| {
        let mut con = con.lock().unwrap();
        redis::cmd("BLPOP")
            .arg(format!("weft:empty:{i}"))
            .arg((OP / N as u32).as_secs_f64())
            .query::<Option<(String, String)>>(&mut *con)
            .map_err(err)
    })?;
    all_equal(&values, None)
}

fn memcache_url(env: &Env) -> String {
    format!(
        "memcache://127.0.0.1:{}?timeout=10&tcp_nodelay=true",
        env.port
    )
}

/// A burst of set/get pairs (memcached has no slow operation).
fn memcache_burst(client: &memcache::Client, i: usize) -> Result<usize, String> {
    let mut ok = 0;
    for round in 0..50 {
        let key = format!("weft:{i}:{round}");
        client.set(&key, round as u64, 0).map_err(err)?;
        if client.get::<u64>(&key).map_err(err)? == Some(round as u64) {
            ok += 1;
        }
    }
    Ok(ok)
}

fn memcache_per_thread(env: &Env) -> Result<String, String> {
    let url = memcache_url(env);
    let values = concurrently(move |i| {
        let client = memcache::Client::connect(url.as_str()).map_err(err)?;
        memcache_burst(&client, i)
    })?;
    all_equal(&values, 50)
}

fn memcache_shared(env: &Env) -> Result<String, String> {
    // One client, r2d2's default pool of one connection: the second green thread waits for
    // it on a parking_lot condvar (a per-OS-thread parker: the worker blocks), while the
    // holder is parked on the same worker. Only the pool's timeout (here 0.2 s) ends it.
    let url = format!("{}&connect_timeout=0.2", memcache_url(env));
    let client = Arc::new(memcache::Client::with_pool_size(url.as_str(), 1).map_err(err)?);
    let values = concurrently(move |i| match memcache_burst(&client, i) {
        Ok(n) => Ok(n == 50),
        Err(e) if e.contains("timed out") || e.contains("Timeout") => Ok(false),
        Err(e) => Err(e),
    })?;
    let ok = values.iter().filter(|v| **v).count();
    Ok(format!(
        "{ok} bursts done, {} timed out waiting for the pool",
        N - ok
    ))
}

fn memcache_shared_pool(env: &Env) -> Result<String, String> {
    // The same client with a pool as large as the concurrency: nobody waits for a
    // connection, so nothing blocks.
    let client =
        memcache::Client::with_pool_size(memcache_url(env).as_str(), N as u32).map_err(err)?;
    let client = Arc::new(client);
    all_equal(&concurrently(move |i| memcache_burst(&client, i))?, 50)
}

fn url(env: &Env) -> String {
    format!("http://127.0.0.1:{}/", env.port)
}

fn ureq2(env: &Env) -> Result<String, String> {
    let url = url(env);
    let values = concurrently(move |_| {
        ureq::get(&url)
            .call()
            .map_err(err)?
            .into_string()
            .map_err(err)
    })?;
    all_equal(&values, "hello".to_owned())
}

fn ureq3(env: &Env) -> Result<String, String> {
    let url = url(env);
    let values = concurrently(move |_| {
        ureq3::get(&url)
            .call()
            .map_err(err)?
            .body_mut()
            .read_to_string()
            .map_err(err)
    })?;
    all_equal(&values, "hello".to_owned())
}

fn attohttpc(env: &Env) -> Result<String, String> {
    let url = url(env);
    let values = concurrently(move |_| {
        attohttpc::get(&url)
            .send()
            .map_err(err)?
            .text()
            .map_err(err)
    })?;
    all_equal(&values, "hello".to_owned())
}

fn minreq(env: &Env) -> Result<String, String> {
    let url = url(env);
    let values = concurrently(move |_| {
        let response = minreq::get(&url).send().map_err(err)?;
        response.as_str().map(str::to_owned).map_err(err)
    })?;
    all_equal(&values, "hello".to_owned())
}

fn reqwest_get(url: &str) -> Result<String, String> {
    reqwest::blocking::get(url)
        .map_err(err)?
        .text()
        .map_err(err)
}

fn reqwest_direct(env: &Env) -> Result<String, String> {
    let url = url(env);
    all_equal(
        &concurrently(move |_| reqwest_get(&url))?,
        "hello".to_owned(),
    )
}

fn reqwest_offload(env: &Env) -> Result<String, String> {
    let url = Arc::new(url(env));
    let values = concurrently(move |_| {
        let url = url.clone();
        weft::offload(move || reqwest_get(&url))
    })?;
    all_equal(&values, "hello".to_owned())
}

fn tungstenite_client(env: &Env) -> Result<String, String> {
    let url = format!("ws://127.0.0.1:{}/", env.port);
    let values = concurrently(move |i| {
        let (mut ws, _) = tungstenite::connect(url.as_str()).map_err(err)?;
        ws.send(tungstenite::Message::text(format!("hi {i}")))
            .map_err(err)?;
        let echo = ws.read().map_err(err)?;
        let _ = ws.close(None);
        Ok(echo.into_text().map_err(err)?.as_str() == format!("hi {i}"))
    })?;
    all_equal(&values, true)
}

fn rusqlite_wal(_env: &Env) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("weft-eco-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(err)?;
    let path = Arc::new(dir.join("db.sqlite"));
    {
        let conn = rusqlite::Connection::open(&*path).map_err(err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err)?;
        if mode != "wal" {
            return Err(format!("journal mode {mode}"));
        }
        conn.execute("CREATE TABLE t (who INTEGER, n INTEGER)", [])
            .map_err(err)?;
    }
    let writer_path = path.clone();
    let values = concurrently(move |i| {
        let conn = rusqlite::Connection::open(&*writer_path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        for n in 0..20 {
            conn.execute("INSERT INTO t VALUES (?1, ?2)", (i as i64, n))
                .map_err(err)?;
        }
        conn.query_row("SELECT COUNT(*) FROM t WHERE who = ?1", [i as i64], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(err)
    })?;
    let total: i64 = rusqlite::Connection::open(&*path)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
        .map_err(err)?;
    let _ = std::fs::remove_dir_all(&dir);
    if total != (N * 20) as i64 {
        return Err(format!("{total} rows, want {}", N * 20));
    }
    all_equal(&values, 20)
}

/// Lines each green thread prints in [`println_full_pipe`].
pub const LINES: usize = 2_000;

fn println_full_pipe(_env: &Env) -> Result<String, String> {
    // The harness does not read this child's stdout for a while, so the pipe fills and
    // every printer waits for it.
    let values = concurrently(|i| {
        for n in 0..LINES {
            println!("line {i} {n} ............................................");
        }
        Ok(LINES)
    })?;
    all_equal(&values, LINES)
}

fn tokio_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(err)
}

fn tokio_block_on_direct(_env: &Env) -> Result<String, String> {
    let values =
        concurrently(|_| Ok(tokio_runtime()?.block_on(async { tokio::time::sleep(OP).await })))?;
    all_equal(&values, ())
}

fn tokio_block_on_std_sleep(_env: &Env) -> Result<String, String> {
    // The crash the issue found: a hooked sleep inside block_on parked the green thread with
    // tokio's per-thread "runtime entered" state set.
    let values = concurrently(|_| Ok(tokio_runtime()?.block_on(async { std::thread::sleep(OP) })))?;
    all_equal(&values, ())
}

fn tokio_multi_thread_block_on(_env: &Env) -> Result<String, String> {
    // The multi-thread runtime's block_on parks the calling thread untimed (a condvar in a
    // thread-local parker) while its "runtime entered" flag is set.
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .map_err(err)?,
    );
    let values = concurrently(move |_| Ok(rt.block_on(async { tokio::time::sleep(OP).await })))?;
    all_equal(&values, ())
}

fn tokio_block_on_offload(_env: &Env) -> Result<String, String> {
    let values = concurrently(|_| {
        weft::offload(|| Ok(tokio_runtime()?.block_on(async { tokio::time::sleep(OP).await })))
    })?;
    all_equal(&values, ())
}

fn std_mutex_across_io(_env: &Env) -> Result<String, String> {
    let lock = Arc::new(Mutex::new(0usize));
    let counter = lock.clone();
    concurrently(move |_| {
        let mut guard = counter.lock().unwrap();
        std::thread::sleep(OP / N as u32);
        *guard += 1;
        Ok(())
    })?;
    let count = *lock.lock().unwrap();
    all_equal(&[count], N)
}

fn std_condvar(_env: &Env) -> Result<String, String> {
    let values = concurrently(|_| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let notifier = {
            let pair = pair.clone();
            weft::spawn(move || {
                std::thread::sleep(OP);
                *pair.0.lock().unwrap() = true;
                pair.1.notify_one();
            })
        };
        let done = *pair.1.wait_while(pair.0.lock().unwrap(), |d| !*d).unwrap();
        notifier.join().unwrap();
        Ok(done)
    })?;
    all_equal(&values, true)
}

fn std_once_lock(_env: &Env) -> Result<String, String> {
    let cell: Arc<OnceLock<u32>> = Arc::new(OnceLock::new());
    let values = concurrently(move |_| {
        Ok(*cell.get_or_init(|| {
            std::thread::sleep(OP);
            42
        }))
    })?;
    all_equal(&values, 42)
}

fn std_mpsc(_env: &Env) -> Result<String, String> {
    let values = concurrently(|i| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            std::thread::sleep(OP);
            let _ = tx.send(i);
        });
        Ok(rx.recv().map_err(err)? == i)
    })?;
    all_equal(&values, true)
}

fn std_thread_park(_env: &Env) -> Result<String, String> {
    // Five, not N: each blocks the worker for a whole OP.
    let values = concurrently(|i| {
        if i >= 5 {
            return Ok(true);
        }
        let until = std::time::Instant::now() + OP;
        while std::time::Instant::now() < until {
            std::thread::park_timeout(until.saturating_duration_since(std::time::Instant::now()));
        }
        Ok(true)
    })?;
    all_equal(&values, true)
}

fn std_command_status(_env: &Env) -> Result<String, String> {
    let values = concurrently(|_| {
        let status = std::process::Command::new("sleep")
            .arg(OP.as_secs_f64().to_string())
            .status()
            .map_err(err)?;
        Ok(status.success())
    })?;
    all_equal(&values, true)
}

fn std_thread_join(_env: &Env) -> Result<String, String> {
    let values = concurrently(|i| {
        std::thread::spawn(move || {
            std::thread::sleep(OP);
            i
        })
        .join()
        .map(|v| v == i)
        .map_err(|_| "the thread panicked".to_owned())
    })?;
    all_equal(&values, true)
}

fn std_fifo_read(_env: &Env) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("weft-eco-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(err)?;
    let dir = Arc::new(dir);
    let fifos = dir.clone();
    let values = concurrently(move |i| {
        let path = fifos.join(format!("fifo{i}"));
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        // The writer is a green thread of the same worker.
        let writer_path = path.clone();
        let writer = weft::spawn(move || {
            std::thread::sleep(OP);
            std::fs::write(&writer_path, format!("fifo {i}"))
        });
        let text = std::fs::read_to_string(&path).map_err(err)?;
        writer.join().unwrap().map_err(err)?;
        Ok(text == format!("fifo {i}"))
    })?;
    let _ = std::fs::remove_dir_all(&*dir);
    all_equal(&values, true)
}

pub const CASES: &[Case] = &[
    Case {
        name: "postgres (sync crate, embeds tokio)",
        expect: Expect::Diagnosed,
        server: "postgres",
        run: postgres_direct,
    },
    Case {
        name: "postgres through weft::offload",
        expect: Expect::HandedOff,
        server: "postgres",
        run: postgres_offload,
    },
    Case {
        name: "mysql Conn per green thread",
        expect: Expect::Green,
        server: "mariadb",
        run: mysql_conn,
    },
    Case {
        name: "mysql Pool (std Mutex + Condvar inside)",
        expect: Expect::Green,
        server: "mariadb",
        run: mysql_pool,
    },
    Case {
        name: "redis BLPOP, connection per green thread",
        expect: Expect::Green,
        server: "redis",
        run: redis_blpop,
    },
    Case {
        name: "redis connection shared by Arc<Mutex<_>>",
        expect: Expect::Green,
        server: "redis",
        run: redis_shared_mutex,
    },
    Case {
        name: "memcache client per green thread",
        expect: Expect::Green,
        server: "memcached",
        run: memcache_per_thread,
    },
    Case {
        name: "memcache client shared (pool of 1, 0.2 s timeout)",
        expect: Expect::Diagnosed,
        server: "memcached",
        run: memcache_shared,
    },
    Case {
        name: "memcache client shared (pool of 20)",
        expect: Expect::Green,
        server: "memcached",
        run: memcache_shared_pool,
    },
    Case {
        name: "ureq 2",
        expect: Expect::Green,
        server: "http",
        run: ureq2,
    },
    Case {
        name: "ureq 3",
        expect: Expect::Green,
        server: "http",
        run: ureq3,
    },
    Case {
        name: "attohttpc",
        expect: Expect::Green,
        server: "http",
        run: attohttpc,
    },
    Case {
        name: "minreq",
        expect: Expect::Green,
        server: "http",
        run: minreq,
    },
    Case {
        name: "reqwest::blocking (embeds tokio)",
        expect: Expect::Diagnosed,
        server: "http",
        run: reqwest_direct,
    },
    Case {
        name: "reqwest::blocking through weft::offload",
        expect: Expect::HandedOff,
        server: "http",
        run: reqwest_offload,
    },
    Case {
        name: "tungstenite client",
        expect: Expect::Green,
        server: "ws",
        run: tungstenite_client,
    },
    Case {
        name: "rusqlite, WAL, 20 writers",
        expect: Expect::InPlace,
        server: "",
        run: rusqlite_wal,
    },
    Case {
        name: "println! into a full pipe",
        expect: Expect::InPlace,
        server: "",
        run: println_full_pipe,
    },
    Case {
        name: "tokio block_on(tokio::time::sleep)",
        expect: Expect::Diagnosed,
        server: "",
        run: tokio_block_on_direct,
    },
    Case {
        name: "tokio block_on(std::thread::sleep)",
        expect: Expect::Limit,
        server: "",
        run: tokio_block_on_std_sleep,
    },
    Case {
        name: "tokio multi-thread Runtime::block_on",
        expect: Expect::Limit,
        server: "",
        run: tokio_multi_thread_block_on,
    },
    Case {
        name: "tokio block_on through weft::offload",
        expect: Expect::HandedOff,
        server: "",
        run: tokio_block_on_offload,
    },
    Case {
        name: "std Mutex held across a hooked sleep",
        expect: Expect::Green,
        server: "",
        run: std_mutex_across_io,
    },
    Case {
        name: "std Condvar",
        expect: Expect::Green,
        server: "",
        run: std_condvar,
    },
    Case {
        name: "std OnceLock initialiser that sleeps",
        expect: Expect::Green,
        server: "",
        run: std_once_lock,
    },
    Case {
        name: "std mpsc recv (sender: OS thread)",
        expect: Expect::Diagnosed,
        server: "",
        run: std_mpsc,
    },
    Case {
        name: "std thread::park_timeout (5 of 20)",
        expect: Expect::Diagnosed,
        server: "",
        run: std_thread_park,
    },
    Case {
        name: "Command::status",
        expect: Expect::Green,
        server: "",
        run: std_command_status,
    },
    Case {
        name: "thread::spawn(..).join()",
        expect: Expect::HandedOff,
        server: "",
        run: std_thread_join,
    },
    Case {
        name: "fs::read of a FIFO (writer: green thread)",
        expect: Expect::HandedOff,
        server: "",
        run: std_fifo_read,
    },
];
