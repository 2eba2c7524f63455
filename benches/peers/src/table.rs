//! Turns the `runtime<TAB>scenario<TAB>ns` lines `run.sh` collects into one markdown table:
//! a row per scenario, a column per runtime, each cell the time per operation and its ratio
//! to weft's (above 1× means weft is faster).

const RUNTIMES: [(&str, &str); 7] = [
    ("weft", "weft"),
    ("may", "may"),
    ("tokio-ct", "tokio current_thread"),
    ("tokio-mt", "tokio multi_thread"),
    ("std", "std threads"),
    ("epoll-floor", "epoll floor (one thread, no runtime)"),
    ("uring-floor", "io_uring floor (one thread, no runtime)"),
];

/// The hand-written servers every runtime's CPU is also compared with, and how a ratio to
/// each is labelled.
const FLOORS: [(&str, &str); 2] = [
    ("epoll-floor", "epoll floor"),
    ("uring-floor", "uring floor"),
];

/// What a scenario's figures are.
#[derive(Clone, Copy)]
enum Unit {
    /// Nanoseconds per operation.
    Time,
    /// Syscalls per operation.
    Count,
    /// Bytes per connection.
    Bytes,
}

const SCENARIOS: [(&str, &str, Unit); 19] = [
    ("yield", "yield, one task alone", Unit::Time),
    (
        "yield_10",
        "yield, 10 tasks round-robin (per yield)",
        Unit::Time,
    ),
    (
        "spawn_join",
        "spawn + join (from inside the runtime)",
        Unit::Time,
    ),
    (
        "ping_pong",
        "channel ping-pong, 2 tasks (per round trip)",
        Unit::Time,
    ),
    (
        "file_read_4k",
        "cached 4 KiB file read (weft::fs, tokio::fs, std)",
        Unit::Time,
    ),
    (
        "echo_1",
        "TCP echo 64 B, 1 connection (per round trip)",
        Unit::Time,
    ),
    (
        "echo_100",
        "TCP echo 64 B, 100 connections (per round trip)",
        Unit::Time,
    ),
    ("echo_100_cpu", "… server CPU per round trip", Unit::Time),
    (
        "echo_100_sys",
        "… server syscalls per round trip",
        Unit::Count,
    ),
    (
        "echo_1000",
        "TCP echo 64 B, 1,000 connections (per round trip)",
        Unit::Time,
    ),
    ("echo_1000_cpu", "… server CPU per round trip", Unit::Time),
    (
        "http_100",
        "HTTP hello, wrk 100 connections (per request)",
        Unit::Time,
    ),
    ("http_100_cpu", "… server CPU per request", Unit::Time),
    ("http_100_sys", "… server syscalls per request", Unit::Count),
    (
        "http_1000",
        "HTTP hello, wrk 1,000 connections (per request)",
        Unit::Time,
    ),
    ("http_1000_cpu", "… server CPU per request", Unit::Time),
    (
        "minihttp_100",
        "… may_minihttp's own server, same load",
        Unit::Time,
    ),
    ("minihttp_100_cpu", "… its CPU per request", Unit::Time),
    (
        "idle_9000",
        "idle connection, 9,000 open (server RSS each)",
        Unit::Bytes,
    ),
];

fn lookup(rows: &[(&str, &str, f64)], runtime: &str, scenario: &str) -> Option<f64> {
    rows.iter()
        .find(|(r, s, _)| *r == runtime && *s == scenario)
        .map(|row| row.2)
}

fn human(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Time => human_time(value),
        Unit::Count => format!("{value:.2}"),
        Unit::Bytes => format!("{:.1} KiB", value / 1024.0),
    }
}

fn human_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

pub fn render(text: &str) -> String {
    let rows: Vec<(&str, &str, f64)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let runtime = fields.next()?;
            let scenario = fields.next()?;
            let ns = fields.next()?.trim().parse().ok()?;
            Some((runtime, scenario, ns))
        })
        .collect();
    let mut out = String::from("| scenario |");
    for (_, title) in RUNTIMES {
        out += &format!(" {title} |");
    }
    out += "\n|---|";
    out += &"---|".repeat(RUNTIMES.len());
    out += "\n";
    for (key, title, unit) in SCENARIOS {
        // may_minihttp is a server of may's, so its rows fill may's column only, with
        // ratios to weft's own HTTP server.
        let (lookup_key, base_key) = match key.strip_prefix("minihttp_") {
            Some(rest) => (key, format!("http_{rest}")),
            None => (key, key.to_owned()),
        };
        let base_key = base_key.as_str();
        let minihttp = key.starts_with("minihttp_");
        let weft = lookup(&rows, "weft", base_key);
        // CPU rows also give each runtime's ratio to each hand-written floor.
        let floors: Vec<(&str, &str, f64)> = if key.ends_with("_cpu") {
            FLOORS
                .iter()
                .filter_map(|&(r, name)| lookup(&rows, r, key).map(|f| (r, name, f)))
                .collect()
        } else {
            Vec::new()
        };
        if RUNTIMES
            .iter()
            .all(|(r, _)| lookup(&rows, r, lookup_key).is_none())
        {
            continue;
        }
        out += &format!("| {title} |");
        for (runtime, _) in RUNTIMES {
            let cell = match lookup(&rows, runtime, lookup_key) {
                Some(v) if runtime != "weft" || !minihttp => {
                    let mut parts = Vec::new();
                    if let (Some(base), false) = (weft, runtime == "weft") {
                        parts.push(format!("{:.2}×", v / base));
                    }
                    for &(floor, name, f) in &floors {
                        if floor != runtime {
                            parts.push(format!("{:.2}× {name}", v / f));
                        }
                    }
                    if parts.is_empty() {
                        human(v, unit)
                    } else {
                        format!("{} ({})", human(v, unit), parts.join(", "))
                    }
                }
                _ => "—".to_string(),
            };
            out += &format!(" {cell} |");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ratios_are_to_weft() {
        let table = super::render(
            "weft\tyield\t10\nmay\tyield\t90\nmay\tminihttp_100\t20000\nweft\thttp_100\t10000\n",
        );
        assert!(
            table.contains("| yield, one task alone | 10.0 ns | 90.0 ns (9.00×) | — | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| … may_minihttp's own server, same load | — | 20.0 µs (2.00×) |"),
            "{table}"
        );
    }

    #[test]
    fn cpu_rows_give_the_ratio_to_each_floor_too() {
        let table = super::render(
            "weft\techo_100_cpu\t8000\ntokio-mt\techo_100_cpu\t6000\n\
             epoll-floor\techo_100_cpu\t4000\nuring-floor\techo_100_cpu\t5000\n",
        );
        assert!(
            table.contains(
                "| … server CPU per round trip | 8.00 µs (2.00× epoll floor, 1.60× uring floor) \
                 | — | — | 6.00 µs (0.75×, 1.50× epoll floor, 1.20× uring floor) | — \
                 | 4.00 µs (0.50×, 0.80× uring floor) | 5.00 µs (0.62×, 1.25× epoll floor) |"
            ),
            "{table}"
        );
    }

    #[test]
    fn counts_and_bytes_have_their_units() {
        let table = super::render(
            "weft\techo_100_sys\t2\ntokio-mt\techo_100_sys\t3\nweft\tidle_9000\t8192\n",
        );
        assert!(
            table
                .contains("| … server syscalls per round trip | 2.00 | — | — | 3.00 (1.50×) | — |"),
            "{table}"
        );
        assert!(
            table.contains("| idle connection, 9,000 open (server RSS each) | 8.0 KiB |"),
            "{table}"
        );
    }
}
