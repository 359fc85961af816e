//! The result table: flat records in, one Markdown table per section out.
//!
//! Any harness can contribute rows. A record names its section (e.g. "native · SQLite file" or, later,
//! "browser · Chromium · OPFS"), the section's baseline contender (the floor natively; `wa-sqlite` in a
//! browser), the operation, the contender and its statistics. Sections, operations and contenders are
//! printed in the order they first appear. Other harnesses hand their rows over as tab-separated lines
//! (see [`Record::parse_tsv`]), so one command can print one table for everything.

use std::fmt::Write as _;

/// One measured (section, operation, contender) cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The table section, e.g. "native · Postgres 15".
    pub section: String,
    /// The contender every other one in this section is divided by.
    pub baseline: String,
    /// The operation, e.g. "get".
    pub op: String,
    /// Who ran it, e.g. "crate".
    pub contender: String,
    /// How many timed calls the statistics summarise.
    pub samples: usize,
    /// Median time of one call, in microseconds.
    pub median_us: f64,
    /// 90th percentile time of one call, in microseconds.
    pub p90_us: f64,
    /// Why the contender could not run this op at all (its first error), if it could not.
    pub error: Option<String>,
}

impl Record {
    /// The tab-separated form: `section, baseline, op, contender, samples, median_us, p90_us[, error]`.
    pub fn to_tsv(&self) -> String {
        let mut line = format!(
            "{}\t{}\t{}\t{}\t{}\t{:.3}\t{:.3}",
            self.section,
            self.baseline,
            self.op,
            self.contender,
            self.samples,
            self.median_us,
            self.p90_us
        );
        if let Some(e) = &self.error {
            line.push('\t');
            line.push_str(&e.replace(['\t', '\n'], " "));
        }
        line
    }

    /// Parses one line of [`Record::to_tsv`]; blank lines and lines starting with `#` give `None`.
    pub fn parse_tsv(line: &str) -> Result<Option<Record>, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() || line.starts_with('#') {
            return Ok(None);
        }
        let f: Vec<&str> = line.split('\t').collect();
        if !(7..=8).contains(&f.len()) {
            return Err(format!(
                "expected 7 or 8 tab-separated fields, got {}: {line:?}",
                f.len()
            ));
        }
        let num = |s: &str| s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"));
        Ok(Some(Record {
            section: f[0].to_owned(),
            baseline: f[1].to_owned(),
            op: f[2].to_owned(),
            contender: f[3].to_owned(),
            samples: f[4].parse().map_err(|e| format!("{:?}: {e}", f[4]))?,
            median_us: num(f[5])?,
            p90_us: num(f[6])?,
            error: f.get(7).map(|e| (*e).to_owned()),
        }))
    }
}

fn first_seen<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Microseconds, with as many decimals as are worth reading.
pub fn us(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        thousands(v.round() as usize)
    }
}

/// A whole number with thousands separators.
pub fn thousands(n: usize) -> String {
    let whole = n.to_string();
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Renders every section as a Markdown table: per contender the median and p90 in µs, and for every
/// contender but the baseline its median divided by the baseline's.
pub fn render(records: &[Record]) -> String {
    let mut out = String::new();
    for section in first_seen(records.iter().map(|r| r.section.as_str())) {
        let rows: Vec<&Record> = records.iter().filter(|r| r.section == section).collect();
        let baseline = rows[0].baseline.as_str();
        let mut contenders = first_seen(rows.iter().map(|r| r.contender.as_str()));
        // The baseline first, the others in order of appearance.
        contenders.sort_by_key(|c| *c != baseline);
        let _ = writeln!(out, "**{section}** (baseline: {baseline})\n");
        let mut head = String::from("| op | n |");
        let mut rule = String::from("|---|--:|");
        for c in &contenders {
            let _ = write!(head, " {c} median µs | p90 |");
            rule.push_str("--:|--:|");
            if *c != baseline {
                let _ = write!(head, " × {baseline} |");
                rule.push_str("--:|");
            }
        }
        let _ = writeln!(out, "{head}\n{rule}");
        let mut notes: Vec<String> = Vec::new();
        for op in first_seen(rows.iter().map(|r| r.op.as_str())) {
            let cell = |c: &str| rows.iter().find(|r| r.op == op && r.contender == c);
            let base = cell(baseline);
            let n = contenders
                .iter()
                .filter_map(|c| cell(c).filter(|r| r.error.is_none()).map(|r| r.samples))
                .min()
                .unwrap_or(0);
            let mut line = format!("| {op} | {n} |");
            for c in &contenders {
                match cell(c) {
                    Some(Record { error: Some(e), .. }) => {
                        notes.push(format!("{c}, {op}: {e}"));
                        let _ = write!(line, " fails ({}) | – |", notes.len());
                    }
                    Some(r) => {
                        let _ = write!(line, " {} | {} |", us(r.median_us), us(r.p90_us));
                    }
                    None => line.push_str(" – | – |"),
                }
                if *c != baseline {
                    match (cell(c), base) {
                        (Some(r), Some(b))
                            if r.error.is_none() && b.error.is_none() && b.median_us > 0.0 =>
                        {
                            let _ = write!(line, " {:.2} |", r.median_us / b.median_us);
                        }
                        _ => line.push_str(" – |"),
                    }
                }
            }
            let _ = writeln!(out, "{line}");
        }
        if !notes.is_empty() {
            out.push('\n');
        }
        for (i, note) in notes.iter().enumerate() {
            let _ = writeln!(out, "({}) {note}", i + 1);
        }
        out.push('\n');
    }
    out
}

/// `contender`'s record with the largest median ratio to its section's baseline: (record, ratio).
pub fn slowest_ratio<'a>(records: &'a [Record], contender: &str) -> Option<(&'a Record, f64)> {
    records
        .iter()
        .filter(|r| r.contender == contender && r.contender != r.baseline && r.error.is_none())
        .filter_map(|r| {
            let base = records
                .iter()
                .find(|b| b.section == r.section && b.op == r.op && b.contender == r.baseline)?;
            (base.median_us > 0.0).then(|| (r, r.median_us / base.median_us))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}
