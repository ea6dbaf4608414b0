//! `sesame import` at institution scale (`make bench-large`, issue 18): a file of 100,000
//! people as a student information system exports it, imported into the bench database by the
//! release binary, then imported again unchanged (the nightly run). The report's counts are
//! checked against the file and against the database.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::infra::{PgServer, Process, DATABASE};

/// Every imported person's `hr_id` starts with it (the seeded accounts have none).
pub const HR_ID_PREFIX: &str = "BENCH-";

/// The counts of an import's `summary:` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// New accounts.
    pub created: u64,
    /// Accounts changed.
    pub updated: u64,
    /// Accounts already as in the file.
    pub unchanged: u64,
    /// Accounts disabled (`--full`).
    pub disabled: u64,
    /// Lines refused.
    pub rejected: u64,
}

impl ImportCounts {
    /// Reads `summary: 3 created, 1 updated, 0 unchanged, 0 disabled, 1 rejected`.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim().strip_prefix("summary: ")?;
        let mut c = Self::default();
        for part in rest.split(", ") {
            let (n, what) = part.split_once(' ')?;
            let n: u64 = n.parse().ok()?;
            match what {
                "created" => c.created = n,
                "updated" => c.updated = n,
                "unchanged" => c.unchanged = n,
                "disabled" => c.disabled = n,
                "rejected" => c.rejected = n,
                _ => return None,
            }
        }
        Some(c)
    }
}

/// One `sesame import` of the file.
#[derive(Debug, Clone)]
pub struct ImportPass {
    /// Wall time of the whole command (start, parsing, every write, the report).
    pub took: Duration,
    /// Its summary.
    pub counts: ImportCounts,
    /// Activation links it queued (people with a recovery address).
    pub activation_links: u64,
}

/// The import measurement.
#[derive(Debug, Clone)]
pub struct ImportRun {
    /// People in the file.
    pub people: u32,
    /// Its size in bytes.
    pub file_bytes: u64,
    /// First import: every person new.
    pub first: ImportPass,
    /// The same file again: nobody changed.
    pub again: ImportPass,
    /// Accounts with one of the file's `hr_id`s in the database afterwards.
    pub accounts_in_database: i64,
}

const GIVEN: [&str; 24] = [
    "Camille",
    "Léa",
    "Hugo",
    "Inès",
    "Lucas",
    "Zoé",
    "Noah",
    "Chloé",
    "Louis",
    "Manon",
    "Jean-Éric",
    "Anaïs",
    "Théo",
    "Maëlle",
    "Gabriel",
    "Sarah",
    "Yanis",
    "Océane",
    "Adam",
    "Lina",
    "Raphaël",
    "Jade",
    "Mathis",
    "Éloïse",
];
const SYLLABLES: [&str; 20] = [
    "ber", "nard", "mar", "tin", "du", "pont", "le", "fèvre", "ro", "bert", "mo", "reau", "gi",
    "rard", "bon", "net", "fau", "chet", "gar", "nier",
];

/// A family name: three syllables, so that about 8,000 exist and logins collide as in a
/// real year group (Sesame then numbers them).
fn family_name(i: u32) -> String {
    let n = SYLLABLES.len() as u32;
    let mut name = String::new();
    for k in [i % n, (i / n) % n, (i / (n * n)) % n] {
        name.push_str(SYLLABLES[k as usize]);
    }
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Writes the file: `people` lines, `;`-separated as French spreadsheets export them, 80 %
/// students, 15 % staff, 5 % faculty, half with a recovery address.
pub fn write_file(path: &Path, people: u32) -> anyhow::Result<u64> {
    let mut csv = String::with_capacity(people as usize * 90);
    csv.push_str("hr_id;given_name;family_name;birth_date;affiliation;recovery_email\n");
    for i in 0..people {
        let affiliation = match i % 20 {
            0..=15 => "student",
            16..=18 => "staff",
            _ => "faculty",
        };
        let email = if i % 2 == 0 {
            format!("p{i}@perso.example.org")
        } else {
            String::new()
        };
        let _ = writeln!(
            csv,
            "{HR_ID_PREFIX}{i:07};{};{};{:02}-{:02}-{};{affiliation};{email}",
            GIVEN[(i as usize * 7) % GIVEN.len()],
            family_name(i / 3),
            1 + i % 28,
            1 + (i / 28) % 12,
            1960 + (i % 45),
        );
    }
    std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
    Ok(csv.len() as u64)
}

/// Runs `command` (a `sesame import` of the file) to completion: its time and summary.
pub async fn import_once(command: Command, log: &Path) -> anyhow::Result<ImportPass> {
    std::fs::remove_file(log).ok();
    let started = Instant::now();
    let mut process = Process::spawn(command, log.to_owned())?;
    let status = process.exited().await?;
    let took = started.elapsed();
    let output = std::fs::read_to_string(log).unwrap_or_default();
    ensure!(
        status.success(),
        "sesame import failed ({status}): {}",
        output.lines().rev().take(5).collect::<Vec<_>>().join(" / ")
    );
    let counts = output
        .lines()
        .find_map(ImportCounts::parse)
        .context("sesame import printed no summary line")?;
    let activation_links = output
        .lines()
        .find_map(|l| l.strip_prefix("activation links queued: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Ok(ImportPass {
        took,
        counts,
        activation_links,
    })
}

/// Accounts whose profile carries one of the file's `hr_id`s.
pub async fn imported_accounts(pg: &PgServer) -> anyhow::Result<i64> {
    let client = pg.connect(DATABASE).await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM account_profiles WHERE hr_id LIKE $1",
            &[&format!("{HR_ID_PREFIX}%")],
        )
        .await
        .context("counting imported accounts")?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line_of_sesame_import() {
        assert_eq!(
            ImportCounts::parse(
                "summary: 3 created, 1 updated, 7 unchanged, 0 disabled, 2 rejected"
            ),
            Some(ImportCounts {
                created: 3,
                updated: 1,
                unchanged: 7,
                disabled: 0,
                rejected: 2
            })
        );
        assert_eq!(ImportCounts::parse("line 3: created jdupont"), None);
        assert_eq!(ImportCounts::parse("summary: three created"), None);
    }

    #[test]
    fn the_file_has_a_header_and_one_line_per_person() {
        let path = std::env::temp_dir().join(format!("sesame-import-{}.csv", std::process::id()));
        write_file(&path, 1000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1001);
        assert!(lines[0].starts_with("hr_id;"));
        assert!(lines.iter().skip(1).all(|l| l.split(';').count() == 6));
        let ids: std::collections::HashSet<&str> = lines
            .iter()
            .skip(1)
            .map(|l| l.split(';').next().unwrap())
            .collect();
        assert_eq!(ids.len(), 1000, "every hr_id once");
    }
}
