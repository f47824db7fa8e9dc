//! `cargo xtask bench [--quick] [bench…]`: the whole bench suite in one run, one table.
//!
//! Builds `crates/basiq-bench`'s `suite` with the bench profile, starts it once as `suite serve`
//! (the emulator and a bare axum server, in their own process so the server's CPU and
//! allocations are never counted against the client), runs every bench against them, and prints
//! figure | SDK | baseline | ratio | target. Each SDK figure is measured beside its baseline in
//! the same run; nothing is compared with numbers from another day or machine.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The benches, in the order they run (cheap first).
pub const BENCHES: &[&str] = &["plan", "parse", "tokens", "overhead", "emulator", "stream"];

/// One `RESULT` line of a bench.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: String,
    pub sdk: f64,
    pub baseline: f64,
    pub unit: String,
    pub target: String,
}

impl Figure {
    /// Parses `RESULT\t<figure>\t<sdk>\t<baseline>\t<unit>\t<target>`.
    pub fn parse(line: &str) -> Option<Self> {
        let mut fields = line.strip_prefix("RESULT\t")?.split('\t');
        Some(Self {
            name: fields.next()?.to_owned(),
            sdk: fields.next()?.parse().ok()?,
            baseline: fields.next()?.parse().ok()?,
            unit: fields.next()?.to_owned(),
            target: fields.next().unwrap_or_default().to_owned(),
        })
    }

    pub fn ratio(&self) -> f64 {
        if self.baseline == 0.0 {
            f64::NAN
        } else {
            self.sdk / self.baseline
        }
    }

    /// Whether the figure meets its target (`None` when it has none or it cannot be read).
    pub fn met(&self) -> Option<bool> {
        let (kind, bound) = self.target.split_once(['<', '>'])?;
        let at_most = self.target.contains("<=");
        let bound: f64 = bound.trim_start_matches('=').parse().ok()?;
        let value = match kind {
            "ratio" => self.ratio(),
            "diff" => self.sdk - self.baseline,
            _ => return None,
        };
        Some(if at_most {
            value <= bound
        } else {
            value >= bound
        })
    }
}

/// Runs the suite; fails only when a bench cannot run (a missed target is reported, not an
/// error: the numbers are for reading).
pub fn run(root: &Path, args: &[&str]) -> Result<(), String> {
    let quick = args.contains(&"--quick");
    let selected: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(unknown) = selected.iter().find(|b| !BENCHES.contains(b)) {
        return Err(format!(
            "unknown bench `{unknown}`; the benches are {}",
            BENCHES.join(", ")
        ));
    }
    let benches: Vec<&str> = if selected.is_empty() {
        BENCHES.to_vec()
    } else {
        selected
    };
    let started = Instant::now();
    let exe = build(root)?;
    let mut server = Server::start(&exe)?;
    let mut figures = Vec::new();
    let mut failed = Vec::new();
    for bench in &benches {
        eprintln!("==> bench {bench}");
        let bench_started = Instant::now();
        match run_bench(&exe, bench, &server, quick) {
            Ok(found) => {
                eprintln!(
                    "==> bench {bench}: {} figures ({:.1}s)",
                    found.len(),
                    bench_started.elapsed().as_secs_f64()
                );
                figures.extend(found);
            }
            Err(e) => {
                eprintln!("==> bench {bench}: FAILED: {e}");
                failed.push(*bench);
            }
        }
    }
    server.stop();
    print!("{}", machine(root));
    print!("{}", table(&figures));
    println!(
        "\n{} figures in {:.0}s{}",
        figures.len(),
        started.elapsed().as_secs_f64(),
        if quick { " (--quick)" } else { "" }
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("benches that did not run: {}", failed.join(", ")))
    }
}

/// `cargo bench --no-run` for the suite; returns the executable.
fn build(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "bench",
            "--locked",
            "-p",
            "basiq-bench",
            "--bench",
            "suite",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the bench suite failed ({})",
            output.status
        ));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "suite")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo did not name the suite's executable".to_owned())
}

/// `suite serve`, running.
struct Server {
    child: Child,
    emulator: String,
    key: String,
    bare: String,
}

impl Server {
    fn start(exe: &Path) -> Result<Self, String> {
        let mut child = Command::new(exe)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the servers: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut next = || lines.next().and_then(Result::ok).unwrap_or_default();
        let (emulator_line, bare_line) = (next(), next());
        let emulator: Vec<&str> = emulator_line.split_whitespace().collect();
        let bare: Vec<&str> = bare_line.split_whitespace().collect();
        match (emulator.as_slice(), bare.as_slice()) {
            (["EMULATOR", url, key], ["BARE", bare]) => Ok(Self {
                emulator: (*url).to_owned(),
                key: (*key).to_owned(),
                bare: (*bare).to_owned(),
                child,
            }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the servers did not start: {emulator_line:?} {bare_line:?}"
                ))
            }
        }
    }

    /// Closes its stdin (it exits), killing it if it does not.
    fn stop(&mut self) {
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn run_bench(exe: &Path, bench: &str, server: &Server, quick: bool) -> Result<Vec<Figure>, String> {
    let mut child = Command::new(exe)
        .arg(bench)
        .env("BASIQ_BENCH_EMULATOR", &server.emulator)
        .env("BASIQ_BENCH_KEY", &server.key)
        .env("BASIQ_BENCH_BARE", &server.bare)
        .env("BASIQ_BENCH_QUICK", if quick { "1" } else { "0" })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start `suite {bench}`: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut figures = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        match Figure::parse(&line) {
            Some(figure) => {
                eprintln!(
                    "    {}: {} vs {} {}",
                    figure.name,
                    number(figure.sdk),
                    number(figure.baseline),
                    figure.unit
                );
                figures.push(figure);
            }
            None => eprintln!("    {line}"),
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(figures)
    } else {
        Err(format!("`suite {bench}` exited with {status}"))
    }
}

fn number(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The table, as Markdown (it goes into docs/performance.md as printed).
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "\n| figure | SDK | baseline | unit | ratio | target | met |\n|---|---:|---:|---|---:|---|---|\n",
    );
    for f in figures {
        let met = match f.met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.3} | {} | {met} |\n",
            f.name,
            number(f.sdk),
            number(f.baseline),
            f.unit,
            f.ratio(),
            f.target.replace("<=", "≤ ").replace(">=", "≥ ")
        ));
    }
    out
}

/// The machine the numbers come from: CPU model, cores, memory, kernel, rustc.
fn machine(root: &Path) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                let kib: u64 = l
                    .strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(kib / 1024 / 1024)
            })
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .current_dir(root)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "\nmachine: {model}, {cores} cores available, {memory} GiB, Linux {}, {rustc}\n",
        kernel.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse_and_targets_are_judged() {
        let f = Figure::parse("RESULT\tasync: CPU per request\t104\t100\tus\tratio<=1.03").unwrap();
        assert_eq!(f.name, "async: CPU per request");
        assert!((f.ratio() - 1.04).abs() < 1e-9);
        assert_eq!(f.met(), Some(false));
        let f = Figure::parse("RESULT\tallocs\t74\t70\tallocs\tdiff<=5").unwrap();
        assert_eq!(f.met(), Some(true));
        let f = Figure::parse("RESULT\tthroughput\t400\t1000\treq/s\tratio>=0.5").unwrap();
        assert_eq!(f.met(), Some(false));
        let f = Figure::parse("RESULT\tparse\t1\t1\tus\t").unwrap();
        assert_eq!(f.met(), None);
        assert!(Figure::parse("progress line").is_none());
        assert!(Figure::parse("RESULT\tx\tnot-a-number\t1\tus\t").is_none());
        let table = table(&[f]);
        assert!(
            table.contains("| parse | 1.00 | 1.00 | us | 1.000 |  |  |"),
            "{table}"
        );
    }
}
