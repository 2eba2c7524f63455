//! The ecosystem suite (see README.md here): every case of `cases.rs` in its own child
//! process on one worker, against servers this process starts on loopback. Prints a table
//! and fails on any case that hangs, panics, answers wrongly, or blocks the worker where it
//! should park (or blocks it without the watchdog naming the syscall).
//!
//! `cargo test --manifest-path tests/ecosystem/Cargo.toml` runs it. A missing server makes
//! its cases SKIPPED, except under `CI=true`, where it fails.

mod cases;
mod servers;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cases::{Env, Expect, CASES, LINES, N};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--case") {
        child(args[at + 1].parse().expect("a case index"));
    } else {
        parent();
    }
}

/// One case, in this (child) process: one worker, a ticker, the case, one result line.
fn child(index: usize) {
    weft::Config::new().workers(1).apply().unwrap();
    let case = &CASES[index];
    let port = std::env::var("WEFT_ECO_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    weft::run(move || {
        let ticker = GapTicker::start();
        let start = Instant::now();
        let result = (case.run)(&Env { port });
        let wall = start.elapsed().as_millis();
        let (ticks, gap) = ticker.stop();
        match result {
            Ok(detail) => println!("ECO ok {wall} {ticks} {gap} {detail}"),
            Err(error) => println!("ECO err {wall} {ticks} {gap} {error}"),
        }
    });
}

/// A green thread that sleeps 1 ms at a time and records the longest gap between two of
/// its ticks: a worker held by a blocking call shows a gap as long as the block, while a
/// worker busy with many green threads still lets it run every few milliseconds.
struct GapTicker {
    stop: Arc<AtomicBool>,
    handle: weft::JoinHandle<(u64, u128)>,
}

impl GapTicker {
    fn start() -> GapTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = weft::spawn(move || {
            let (mut ticks, mut gap, mut last) = (0u64, 0u128, Instant::now());
            while !flag.load(Ordering::Acquire) {
                weft::sleep(Duration::from_millis(1));
                let now = Instant::now();
                gap = gap.max(now.duration_since(last).as_millis());
                last = now;
                ticks += 1;
            }
            (ticks, gap)
        });
        // Let it take its first turn before the case starts.
        weft::sleep(Duration::from_millis(5));
        GapTicker { stop, handle }
    }

    /// The ticks and the longest gap, in ms.
    fn stop(self) -> (u64, u128) {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap()
    }
}

/// What the harness saw of one child.
struct Seen {
    stdout: String,
    stderr: String,
    /// When the watchdog first named a syscall, from the child's start.
    named_after: Option<Duration>,
    timed_out: bool,
}

fn run_child(index: usize, port: u16, hold_stdout: Option<Duration>) -> Seen {
    let start = Instant::now();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--case", &index.to_string()])
        .env("WEFT_ECO_PORT", port.to_string())
        // Name short stalls too (the default is 100 ms): a case that blocks its worker for
        // 20 ms at a time, twenty times, is blocked, and must be named.
        .env("WEFT_BLOCKED_WARN_MS", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the case's child process");
    let mut stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        if let Some(hold) = hold_stdout {
            std::thread::sleep(hold);
        }
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let (named_tx, named_rx) = mpsc::channel();
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("blocked in the syscall") {
                let _ = named_tx.send(start.elapsed());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let deadline = start + Duration::from_secs(120);
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Seen {
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        named_after: named_rx.try_recv().ok(),
        timed_out,
    }
}

/// The syscall the watchdog named, if it did.
fn named_syscall(stderr: &str) -> Option<String> {
    let at = stderr.find("blocked in the syscall ")? + "blocked in the syscall ".len();
    Some(
        stderr[at..]
            .split(|c: char| c == ':' || c.is_whitespace())
            .next()?
            .to_owned(),
    )
}

fn parent() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let http = servers::slow_http();
    let ws = servers::slow_ws_echo();
    let mut started: HashMap<&str, Result<servers::Server, String>> = HashMap::new();
    let mut rows = Vec::new();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (index, case) in CASES.iter().enumerate() {
        let port = match case.server {
            "" => 0,
            "http" => http,
            "ws" => ws,
            name => {
                let server = started.entry(name).or_insert_with(|| match name {
                    "redis" => servers::redis(),
                    "memcached" => servers::memcached(),
                    "postgres" => servers::postgres(),
                    "mariadb" => servers::mariadb(),
                    other => Err(format!("unknown server {other}")),
                });
                match server {
                    Ok(server) => server.port,
                    Err(why) if !ci => {
                        println!("SKIPPED {}: {why} (.ci/run installs it)", case.name);
                        skipped += 1;
                        continue;
                    }
                    Err(why) => {
                        println!("FAILED {}: {why}", case.name);
                        failed += 1;
                        continue;
                    }
                }
            }
        };
        let printer = case.name.starts_with("println!");
        let hold = printer.then_some(Duration::from_millis(500));
        let seen = run_child(index, port, hold);
        let (verdict, row) = judge(case, &seen, printer);
        println!(
            "{} {}",
            if verdict.is_ok() { "ok    " } else { "FAILED" },
            row
        );
        if let Err(why) = &verdict {
            println!("       {why}\n       stderr: {}", seen.stderr.trim());
            failed += 1;
        } else {
            passed += 1;
        }
        rows.push(row);
    }
    println!(
        "\n| case | expected | seen | wall ms | ticks | longest tick gap ms | named | result |"
    );
    println!("|---|---|---|---:|---:|---:|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!("\necosystem: {passed} passed, {failed} failed, {skipped} skipped");
    drop(started);
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Checks one case against what it is expected to show; returns the verdict and a table row.
/// The longest a green case may keep the ticker from running.
const MAX_GAP_MS: u64 = 50;

fn judge(case: &cases::Case, seen: &Seen, printer: bool) -> (Result<(), String>, String) {
    let line = seen.stdout.lines().find(|l| l.starts_with("ECO "));
    let mut fields = line
        .unwrap_or("ECO none 0 0 0 no result")
        .splitn(6, ' ')
        .skip(1);
    let status = fields.next().unwrap_or("");
    let wall: u64 = fields.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let ticks: u64 = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    let gap: u64 = fields.next().and_then(|g| g.parse().ok()).unwrap_or(0);
    let detail = fields.next().unwrap_or("").to_owned();
    let named = named_syscall(&seen.stderr);
    let named_col = match (&named, seen.named_after) {
        (Some(name), Some(after)) => format!("{name} ({} ms)", after.as_millis()),
        _ => "—".to_owned(),
    };
    // The ticker never waited 50 ms for its turn: the worker was never held that long.
    let ticking = status != "none" && gap < MAX_GAP_MS;
    let seen_class = if seen.stderr.contains("panicked") {
        "panics"
    } else if ticking {
        "green"
    } else if named.is_some() {
        "diagnosed"
    } else {
        "blocked"
    };
    let expected = match case.expect {
        Expect::Green => "green",
        Expect::HandedOff => "handed off",
        Expect::InPlace => "in place",
        Expect::Diagnosed => "diagnosed",
        Expect::Limit => "limit",
    };
    let row = format!(
        "| {} | {expected} | {seen_class} | {wall} | {ticks} | {gap} | {named_col} | {} |",
        case.name,
        if status == "ok" {
            detail.as_str()
        } else {
            "error"
        }
    );
    let verdict = (|| {
        if seen.timed_out {
            return Err("hung: killed after 120 s".to_owned());
        }
        if case.expect == Expect::Limit {
            return Ok(());
        }
        if seen.stderr.contains("panicked") {
            return Err("a panic".to_owned());
        }
        if status != "ok" {
            return Err(format!("no correct result: {status} {detail}"));
        }
        if printer {
            let lines = seen
                .stdout
                .lines()
                .filter(|l| l.starts_with("line "))
                .count();
            if lines != N * LINES {
                return Err(format!("{lines} lines arrived, want {}", N * LINES));
            }
        }
        match case.expect {
            Expect::Green | Expect::HandedOff if !ticking => Err(format!(
                "the worker was held: the ticker waited {gap} ms for a turn"
            )),
            Expect::Diagnosed if !ticking && named.is_none() => {
                Err("the worker was held and the watchdog named nothing".to_owned())
            }
            _ => Ok(()),
        }
    })();
    (verdict, row)
}
