//! Turns the `runtime<TAB>scenario<TAB>ns` lines `run.sh` collects into one markdown table:
//! a row per scenario, a column per runtime, each cell the time per operation and its ratio
//! to weft's (above 1× means weft is faster).

const RUNTIMES: [(&str, &str); 5] = [
    ("weft", "weft"),
    ("may", "may"),
    ("tokio-ct", "tokio current_thread"),
    ("tokio-mt", "tokio multi_thread"),
    ("std", "std threads"),
];

const SCENARIOS: [(&str, &str); 10] = [
    ("yield", "yield, one task alone"),
    ("yield_10", "yield, 10 tasks round-robin (per yield)"),
    ("spawn_join", "spawn + join (from inside the runtime)"),
    ("ping_pong", "channel ping-pong, 2 tasks (per round trip)"),
    (
        "file_read_4k",
        "cached 4 KiB file read (weft::fs, tokio::fs, std)",
    ),
    ("echo_1", "TCP echo 64 B, 1 connection (per round trip)"),
    (
        "echo_100",
        "TCP echo 64 B, 100 connections (per round trip)",
    ),
    (
        "echo_1000",
        "TCP echo 64 B, 1,000 connections (per round trip)",
    ),
    ("http_100", "HTTP hello, wrk 100 connections (per request)"),
    ("minihttp_100", "… may_minihttp's own server, same load"),
];

fn lookup(rows: &[(&str, &str, f64)], runtime: &str, scenario: &str) -> Option<f64> {
    rows.iter()
        .find(|(r, s, _)| *r == runtime && *s == scenario)
        .map(|row| row.2)
}

fn human(ns: f64) -> String {
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
    for (key, title) in SCENARIOS {
        // may_minihttp is a server of may's, so its row fills may's column only.
        let (lookup_key, base_key) = if key == "minihttp_100" {
            ("minihttp_100", "http_100")
        } else {
            (key, key)
        };
        let weft = lookup(&rows, "weft", base_key);
        if RUNTIMES
            .iter()
            .all(|(r, _)| lookup(&rows, r, lookup_key).is_none())
        {
            continue;
        }
        out += &format!("| {title} |");
        for (runtime, _) in RUNTIMES {
            let cell = match (lookup(&rows, runtime, lookup_key), weft) {
                (Some(ns), Some(base)) if runtime != "weft" || key != "minihttp_100" => {
                    if runtime == "weft" {
                        human(ns)
                    } else {
                        format!("{} ({:.1}×)", human(ns), ns / base)
                    }
                }
                (Some(ns), None) => human(ns),
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
            table.contains("| yield, one task alone | 10.0 ns | 90.0 ns (9.0×) | — | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| … may_minihttp's own server, same load | — | 20.0 µs (2.0×) |"),
            "{table}"
        );
    }
}
