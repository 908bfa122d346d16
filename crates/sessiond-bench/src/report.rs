//! The table: printed, and written into `docs/BENCHMARKS.md` between the markers
//! [`BEGIN`] and [`END`] (what is outside them, the hand-written analysis, is kept). The
//! propagation, Redis Cluster and token scenarios each write a section of their own,
//! between markers of their own.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use crate::load::Outcome;

const BEGIN: &str = "<!-- bench:begin (written by `make bench`; edit outside these markers) -->";
const END: &str = "<!-- bench:end -->";
const PROPAGATION_BEGIN: &str = "<!-- bench:propagation:begin (written by `make bench` and `BENCH_ONLY=propagation`; edit outside these markers) -->";
const PROPAGATION_END: &str = "<!-- bench:propagation:end -->";
const CLUSTER_BEGIN: &str = "<!-- bench:cluster:begin (written by `make bench` and `BENCH_ONLY=cluster`; edit outside these markers) -->";
const CLUSTER_END: &str = "<!-- bench:cluster:end -->";
const TOKENS_BEGIN: &str = "<!-- bench:tokens:begin (written by `make bench` and `BENCH_ONLY=token-verify`; edit outside these markers) -->";
const TOKENS_END: &str = "<!-- bench:tokens:end -->";
const ADMIN_BEGIN: &str = "<!-- bench:admin:begin (written by `make bench` and `BENCH_ONLY=admin`; edit outside these markers) -->";
const ADMIN_END: &str = "<!-- bench:admin:end -->";

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    what: String,
    result: String,
    target: Option<(String, bool)>,
}

impl Row {
    pub fn info(what: String, result: String) -> Self {
        Self {
            what,
            result,
            target: None,
        }
    }

    pub fn target(what: String, result: String, target: &str, met: bool) -> Self {
        Self {
            what,
            result,
            target: Some((target.to_owned(), met)),
        }
    }
}

#[derive(Debug)]
pub struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    plans: Vec<(String, String)>,
    /// The section's heading line, its markers and its `setup` line.
    heading: &'static str,
    begin: &'static str,
    end: &'static str,
    setup: String,
}

impl Report {
    /// The main table ("Latest run").
    pub fn new(server_workers: usize, client_threads: usize) -> Self {
        Self::section(
            "## Latest run",
            BEGIN,
            END,
            format!(
                "sessiond (release), the floor and the ceiling each on {server_workers} actix workers; the load generator on its own tokio runtime ({client_threads} threads); all on the same cores, so compare ratios, not absolute numbers"
            ),
        )
    }

    /// A section of its own, between its own markers.
    fn section(
        heading: &'static str,
        begin: &'static str,
        end: &'static str,
        setup: String,
    ) -> Self {
        Self {
            rows: Vec::new(),
            notes: Vec::new(),
            plans: Vec::new(),
            heading,
            begin,
            end,
            setup,
        }
    }

    /// The revocation propagation section.
    pub fn propagation(setup: String) -> Self {
        Self::section(
            "### Latest propagation run",
            PROPAGATION_BEGIN,
            PROPAGATION_END,
            setup,
        )
    }

    /// The Redis Cluster section.
    pub fn cluster(setup: String) -> Self {
        Self::section(
            "### Latest Redis Cluster run",
            CLUSTER_BEGIN,
            CLUSTER_END,
            setup,
        )
    }

    /// The access-token verification section.
    pub fn tokens(setup: String) -> Self {
        Self::section("### Latest token run", TOKENS_BEGIN, TOKENS_END, setup)
    }

    pub fn admin(setup: String) -> Self {
        Self {
            rows: Vec::new(),
            notes: Vec::new(),
            plans: Vec::new(),
            heading: "### Latest administration run",
            begin: ADMIN_BEGIN,
            end: ADMIN_END,
            setup,
        }
    }

    pub fn row(&mut self, row: Row) {
        eprintln!("bench: {} = {}", row.what, row.result);
        self.rows.push(row);
    }

    pub fn note(&mut self, note: String) {
        eprintln!("bench: {note}");
        self.notes.push(note);
    }

    pub fn plan(&mut self, what: &str, plan: &str) {
        self.plans.push((what.to_owned(), plan.to_owned()));
    }

    pub fn throughput(&mut self, name: &str, connections: usize, o: &Outcome) {
        self.row(Row::info(
            format!("{name}, {connections} connections"),
            format!(
                "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms ({} requests, {} errors{})",
                o.rate(),
                o.ms(0.5),
                o.ms(0.99),
                o.ms(0.999),
                o.requests,
                o.errors,
                if o.errors == 0 {
                    String::new()
                } else {
                    format!(": {}; {:.0} answered 2xx/s", o.failures(), o.ok_rate())
                }
            ),
        ));
    }

    fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "{}", self.begin);
        let _ = writeln!(md, "{}\n", self.heading);
        let _ = writeln!(md, "- date: {}", date());
        let _ = writeln!(md, "- commit: {}", commit());
        let _ = writeln!(md, "- machine: {}", machine());
        let _ = writeln!(md, "- setup: {}", self.setup);
        let _ = writeln!(md);
        let _ = writeln!(md, "| measurement | result | target | met |");
        let _ = writeln!(md, "|---|---|---|---|");
        for row in &self.rows {
            let (target, met) = match &row.target {
                Some((target, true)) => (target.as_str(), "met"),
                Some((target, false)) => (target.as_str(), "**not met**"),
                None => ("", ""),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {target} | {met} |",
                row.what.replace('|', "\\|"),
                row.result.replace('|', "\\|")
            );
        }
        let _ = writeln!(md);
        for note in &self.notes {
            let _ = writeln!(md, "- {note}");
        }
        for (what, plan) in &self.plans {
            let _ = writeln!(md, "\n`EXPLAIN` of the {what}:\n\n```\n{plan}\n```");
        }
        let _ = writeln!(md, "{}", self.end);
        md
    }

    /// Prints the table and writes it into the Markdown file.
    pub fn finish(&self) -> anyhow::Result<()> {
        let md = self.markdown();
        println!("{md}");
        let out = std::env::var("BENCH_OUT").unwrap_or_default();
        if out == "-" {
            return Ok(());
        }
        let path = if out.is_empty() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/BENCHMARKS.md")
        } else {
            PathBuf::from(out)
        };
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        let text = match (existing.find(self.begin), existing.find(self.end)) {
            (Some(begin), Some(end)) if end > begin => format!(
                "{}{}{}",
                &existing[..begin],
                md.trim_end(),
                &existing[end + self.end.len()..]
            ),
            // No section yet: added at the end, the rest of the file kept.
            _ if !existing.trim().is_empty() => format!("{}\n\n{md}", existing.trim_end()),
            _ => format!("# Benchmarks\n\n`make bench` writes the next section.\n\n{md}"),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text)?;
        eprintln!("bench: wrote {}", path.display());
        Ok(())
    }
}

fn date() -> String {
    let format = time::format_description::well_known::Rfc3339;
    crate::now()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let head = command("git", &["-C", dir, "rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "unknown".into());
    let dirty =
        command("git", &["-C", dir, "status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head} (with uncommitted changes)")
    } else {
        head
    }
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!(
        "{cores} cores ({model}), {:.1} GiB memory (/proc/meminfo), {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        command("uname", &["-sr"]).unwrap_or_default()
    )
}
