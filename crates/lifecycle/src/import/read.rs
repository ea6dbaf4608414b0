//! Reading a provisioning file (CSV or JSON) into checked person records, and the reasons a
//! line is rejected.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde_json::value::RawValue;
use sesame_core::ids::{Affiliation, Email, HrId, IdentifierKind, MobilePhone};
use sesame_core::national_id::{NationalId, NationalIdHash, NationalIdKey};
use time::{Date, Month};

use crate::error::ImportError;

/// Longest given or family name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// A column (CSV) or field (JSON) of a provisioning file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// `hr_id`: staff number, student file number or INE (required).
    HrId,
    /// `given_name` (required).
    GivenName,
    /// `family_name` (required).
    FamilyName,
    /// `affiliation`: staff, faculty, student, pupil, parent or affiliate (required).
    Affiliation,
    /// `birth_date`: dd-mm-yyyy, dd/mm/yyyy or yyyy-mm-dd.
    BirthDate,
    /// `national_id`: hashed on reading, never stored or shown as such.
    NationalId,
    /// `recovery_email`: personal address for activation and recovery.
    RecoveryEmail,
    /// `mobile`: mobile phone for recovery.
    Mobile,
}

impl Column {
    /// Every column, required ones first.
    pub const ALL: [Self; 8] = [
        Self::HrId,
        Self::GivenName,
        Self::FamilyName,
        Self::Affiliation,
        Self::BirthDate,
        Self::NationalId,
        Self::RecoveryEmail,
        Self::Mobile,
    ];

    /// The header (CSV) or key (JSON).
    pub fn name(self) -> &'static str {
        match self {
            Self::HrId => "hr_id",
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::Affiliation => "affiliation",
            Self::BirthDate => "birth_date",
            Self::NationalId => "national_id",
            Self::RecoveryEmail => "recovery_email",
            Self::Mobile => "mobile",
        }
    }

    /// Whether every record must have it.
    pub fn required(self) -> bool {
        matches!(
            self,
            Self::HrId | Self::GivenName | Self::FamilyName | Self::Affiliation
        )
    }

    /// The column a header names (case and surrounding spaces ignored).
    fn from_header(header: &str) -> Option<Self> {
        let header = header.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|c| c.name() == header)
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a line was rejected. The messages never repeat a national ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// A required field is empty or absent.
    #[error("{0} is missing")]
    Missing(Column),
    /// A field does not parse; `detail` says why (and quotes the value, except a national ID).
    #[error("{column} {detail}")]
    Invalid {
        /// The field.
        column: Column,
        /// Why.
        detail: String,
    },
    /// The birth date lies in the future or before 1900.
    #[error("birth_date {0} is not plausible (before 1900 or in the future)")]
    ImplausibleBirthDate(Date),
    /// The same `hr_id` is on other lines of the file: none of them is imported.
    #[error("hr_id {hr_id} is also on line(s) {}", join_lines(.others))]
    DuplicateHrId {
        /// The identifier.
        hr_id: HrId,
        /// The other lines that have it.
        others: Vec<usize>,
    },
    /// A CSV line with another number of fields than the header.
    #[error("has {found} fields where the header has {expected}")]
    FieldCount {
        /// Fields on the line.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// A JSON array element that is not an object.
    #[error("is not a JSON object")]
    NotAnObject,
    /// A JSON key that is not a known field.
    #[error("has an unknown field {0:?} (known: hr_id, given_name, family_name, affiliation, birth_date, national_id, recovery_email, mobile)")]
    UnknownField(String),
    /// A JSON value that is neither a string, a number nor null.
    #[error("{0} must be a string")]
    NotAString(String),
    /// No login can be made from the names.
    #[error("{0}")]
    NoLogin(#[from] crate::login::LoginGenerationError),
    /// Another account already has this `hr_id` (written by someone else meanwhile).
    #[error("hr_id {0} already belongs to another account")]
    HrIdTaken(HrId),
    /// The login or institutional e-mail this person would get is another account's e-mail
    /// or login: the login page takes either in one field, so they share one namespace.
    #[error("the {field} {value} this person would get is already the {} of another account (logins and e-mails are typed in the same field of the login page): give that account this hr_id if it is the same person, or change its login", held_as_text(*.held_as))]
    IdentifierTaken {
        /// The field the person would get.
        field: IdentifierKind,
        /// Its value.
        value: String,
        /// What it is to the account that holds it.
        held_as: IdentifierKind,
    },
}

fn held_as_text(kind: IdentifierKind) -> &'static str {
    match kind {
        IdentifierKind::Login => "login",
        IdentifierKind::Email => "e-mail",
    }
}

fn join_lines(lines: &[usize]) -> String {
    lines
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A line that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Line number in the file (1 is the CSV header; for JSON, the line where the object
    /// starts).
    pub line: usize,
    /// Its `hr_id`, when that could be read (a full import never disables that person).
    pub hr_id: Option<HrId>,
    /// Its affiliation, when that could be read.
    pub affiliation: Option<Affiliation>,
    /// Why.
    pub reason: RejectReason,
}

/// A person as a provisioning file describes them, checked. The national ID is already
/// hashed: the number itself is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRecord {
    /// Line number in the file.
    pub line: usize,
    /// HR or student identifier.
    pub hr_id: HrId,
    /// Given name, spaces collapsed.
    pub given_name: String,
    /// Family name, spaces collapsed.
    pub family_name: String,
    /// Affiliation.
    pub affiliation: Affiliation,
    /// Birth date.
    pub birth_date: Option<Date>,
    /// Keyed hash of the national ID.
    pub national_id: Option<NationalIdHash>,
    /// Recovery e-mail.
    pub recovery_email: Option<Email>,
    /// Mobile phone.
    pub mobile: Option<MobilePhone>,
}

/// The checked content of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadFile {
    /// Lines that can be imported, in file order.
    pub records: Vec<PersonRecord>,
    /// Lines that cannot, in file order.
    pub rejections: Vec<Rejection>,
}

/// What checking a record needs besides the record.
#[derive(Debug, Clone, Copy)]
pub struct ReadContext<'a> {
    /// Today (no birth date after it).
    pub today: Date,
    /// The national ID key, if configured.
    pub national_id_key: Option<&'a NationalIdKey>,
}

/// The format of a provisioning file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A header line naming the columns, then one person per line; `,` or `;` separated.
    Csv,
    /// An array of objects with the same field names.
    Json,
}

/// One record before checking: the non-empty trimmed value of each field.
#[derive(Debug, Default)]
struct RawRecord {
    line: usize,
    fields: BTreeMap<Column, String>,
}

/// Reads and checks a whole file. Each bad line becomes a [`Rejection`]; duplicate `hr_id`s
/// reject every line that has them.
///
/// # Errors
/// [`ImportError`] when the file as a whole cannot be read: not UTF-8, no header, unknown,
/// missing or repeated columns, not a JSON array, or national IDs without a configured key.
pub fn read(input: &[u8], format: Format, ctx: ReadContext<'_>) -> Result<ReadFile, ImportError> {
    let text = std::str::from_utf8(input).map_err(|e| ImportError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (raws, mut rejections) = match format {
        Format::Csv => read_csv(text)?,
        Format::Json => read_json(text)?,
    };
    if ctx.national_id_key.is_none()
        && raws
            .iter()
            .any(|r| r.fields.contains_key(&Column::NationalId))
    {
        return Err(ImportError::NationalIdKeyMissing);
    }
    let mut records = Vec::with_capacity(raws.len());
    for raw in raws {
        match check(raw, ctx) {
            Ok(record) => records.push(record),
            Err(rejection) => rejections.push(rejection),
        }
    }
    let mut file = ReadFile {
        records,
        rejections,
    };
    reject_duplicates(&mut file);
    file.rejections.sort_by_key(|r| r.line);
    Ok(file)
}

/// Moves every record whose `hr_id` is on more than one line (imported or rejected) to the
/// rejections.
fn reject_duplicates(file: &mut ReadFile) {
    let mut lines: HashMap<HrId, Vec<usize>> = HashMap::new();
    for (hr_id, line) in file.records.iter().map(|r| (&r.hr_id, r.line)).chain(
        file.rejections
            .iter()
            .filter_map(|r| r.hr_id.as_ref().map(|h| (h, r.line))),
    ) {
        lines.entry(hr_id.clone()).or_default().push(line);
    }
    let (kept, duplicated): (Vec<_>, Vec<_>) = std::mem::take(&mut file.records)
        .into_iter()
        .partition(|r| lines.get(&r.hr_id).is_none_or(|l| l.len() == 1));
    file.records = kept;
    for record in duplicated {
        let others = lines
            .get(&record.hr_id)
            .map(|l| l.iter().copied().filter(|&n| n != record.line).collect())
            .unwrap_or_default();
        file.rejections.push(Rejection {
            line: record.line,
            affiliation: Some(record.affiliation),
            reason: RejectReason::DuplicateHrId {
                hr_id: record.hr_id.clone(),
                others,
            },
            hr_id: Some(record.hr_id),
        });
    }
}

fn read_csv(text: &str) -> Result<(Vec<RawRecord>, Vec<Rejection>), ImportError> {
    let header_line = text.lines().next().unwrap_or_default();
    // French spreadsheets export with semicolons.
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Csv(e.to_string()))?
        .clone();
    if headers.iter().all(|h| h.trim().is_empty()) {
        return Err(ImportError::NoHeader);
    }
    // Columns with an empty header (a trailing separator) are ignored.
    let mut columns: Vec<Option<Column>> = Vec::with_capacity(headers.len());
    let mut unknown = Vec::new();
    for header in &headers {
        if header.trim().is_empty() {
            columns.push(None);
            continue;
        }
        match Column::from_header(header) {
            Some(c) if columns.contains(&Some(c)) => {
                return Err(ImportError::DuplicateColumn(c.name()))
            }
            Some(c) => columns.push(Some(c)),
            None => unknown.push(header.trim().to_owned()),
        }
    }
    if !unknown.is_empty() {
        return Err(ImportError::UnknownColumns(unknown));
    }
    let missing: Vec<&'static str> = Column::ALL
        .into_iter()
        .filter(|c| c.required() && !columns.contains(&Some(*c)))
        .map(Column::name)
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns(missing));
    }
    let mut raws = Vec::new();
    let mut rejections = Vec::new();
    // The reader's own line count skips blank lines: count newlines before each record's
    // first byte instead, carrying on from the previous record.
    let (mut counted_to, mut line) = (0_usize, 1_usize);
    for result in reader.records() {
        let record = result.map_err(|e| ImportError::Csv(e.to_string()))?;
        let position = record
            .position()
            .map_or(counted_to, |p| {
                usize::try_from(p.byte()).unwrap_or(usize::MAX)
            })
            .clamp(counted_to, text.len());
        // The position is that of the blank lines skipped before the record, if any.
        let start = text.get(position..).map_or(position, |rest| {
            position + (rest.len() - rest.trim_start_matches(['\r', '\n']).len())
        });
        line += text
            .get(counted_to..start)
            .map_or(0, |between| between.matches('\n').count());
        counted_to = start;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != columns.len() {
            rejections.push(Rejection {
                line,
                hr_id: None,
                affiliation: None,
                reason: RejectReason::FieldCount {
                    found: record.len(),
                    expected: columns.len(),
                },
            });
            continue;
        }
        let mut raw = RawRecord {
            line,
            ..RawRecord::default()
        };
        for (column, value) in columns.iter().zip(record.iter()) {
            if let Some(column) = column {
                let value = value.trim();
                if !value.is_empty() {
                    raw.fields.insert(*column, value.to_owned());
                }
            }
        }
        raws.push(raw);
    }
    Ok((raws, rejections))
}

fn read_json(text: &str) -> Result<(Vec<RawRecord>, Vec<Rejection>), ImportError> {
    let elements: Vec<&RawValue> =
        serde_json::from_str(text).map_err(|e| ImportError::Json(e.to_string()))?;
    let mut raws = Vec::with_capacity(elements.len());
    let mut rejections = Vec::new();
    for element in elements {
        // The element borrows from `text`: its offset gives its line.
        let offset = (element.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let line = 1 + text
            .get(..offset)
            .map_or(0, |before| before.matches('\n').count());
        let reject = |reason| Rejection {
            line,
            hr_id: None,
            affiliation: None,
            reason,
        };
        let Ok(serde_json::Value::Object(map)) =
            serde_json::from_str::<serde_json::Value>(element.get())
        else {
            rejections.push(reject(RejectReason::NotAnObject));
            continue;
        };
        let mut raw = RawRecord {
            line,
            ..RawRecord::default()
        };
        let mut problem = None;
        for (key, value) in map {
            let Some(column) = Column::from_header(&key) else {
                problem.get_or_insert(RejectReason::UnknownField(key));
                continue;
            };
            let value = match value {
                serde_json::Value::String(s) => s.trim().to_owned(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Null => String::new(),
                _ => {
                    problem.get_or_insert(RejectReason::NotAString(column.name().to_owned()));
                    continue;
                }
            };
            if !value.is_empty() {
                raw.fields.insert(column, value);
            }
        }
        match problem {
            Some(reason) => {
                let mut rejection = reject(reason);
                rejection.hr_id = raw
                    .fields
                    .get(&Column::HrId)
                    .and_then(|h| HrId::parse(h).ok());
                rejection.affiliation = raw
                    .fields
                    .get(&Column::Affiliation)
                    .and_then(|a| Affiliation::from_str(a).ok());
                rejections.push(rejection);
            }
            None => raws.push(raw),
        }
    }
    Ok((raws, rejections))
}

/// Checks one record; the first problem found rejects it.
fn check(raw: RawRecord, ctx: ReadContext<'_>) -> Result<PersonRecord, Rejection> {
    let hr_id = raw
        .fields
        .get(&Column::HrId)
        .and_then(|h| HrId::parse(h).ok());
    let affiliation = raw
        .fields
        .get(&Column::Affiliation)
        .and_then(|a| Affiliation::from_str(a).ok());
    let reject = |reason| Rejection {
        line: raw.line,
        hr_id: hr_id.clone(),
        affiliation,
        reason,
    };
    let invalid = |column, detail: String| reject(RejectReason::Invalid { column, detail });
    for column in Column::ALL {
        if column.required() && !raw.fields.contains_key(&column) {
            return Err(reject(RejectReason::Missing(column)));
        }
    }
    let field = |c: Column| raw.fields.get(&c).map(String::as_str);
    let hr_id_value = field(Column::HrId).unwrap_or_default();
    let hr_id = HrId::parse(hr_id_value)
        .map_err(|e| invalid(Column::HrId, format!("{hr_id_value:?} {e}")))?;
    let given_name = clean_name(field(Column::GivenName).unwrap_or_default())
        .map_err(|detail| invalid(Column::GivenName, detail))?;
    let family_name = clean_name(field(Column::FamilyName).unwrap_or_default())
        .map_err(|detail| invalid(Column::FamilyName, detail))?;
    let affiliation_value = field(Column::Affiliation).unwrap_or_default();
    let affiliation = Affiliation::from_str(affiliation_value)
        .map_err(|e| invalid(Column::Affiliation, format!("{affiliation_value:?} {e}")))?;
    let birth_date = field(Column::BirthDate)
        .map(|d| {
            let date = parse_date(d).ok_or_else(|| {
                invalid(
                    Column::BirthDate,
                    format!("{d:?} is not a date (dd-mm-yyyy, dd/mm/yyyy or yyyy-mm-dd)"),
                )
            })?;
            if date.year() < 1900 || date > ctx.today {
                return Err(reject(RejectReason::ImplausibleBirthDate(date)));
            }
            Ok(date)
        })
        .transpose()?;
    let national_id = match (field(Column::NationalId), ctx.national_id_key) {
        (Some(raw_id), Some(key)) => Some(
            // The error text never contains the number.
            NationalId::parse(raw_id)
                .map(|id| key.hash(&id))
                .map_err(|e| invalid(Column::NationalId, e.to_string()))?,
        ),
        _ => None,
    };
    let recovery_email = field(Column::RecoveryEmail)
        .map(|e| {
            Email::parse(e).map_err(|err| invalid(Column::RecoveryEmail, format!("{e:?} {err}")))
        })
        .transpose()?;
    let mobile = field(Column::Mobile)
        .map(|m| {
            MobilePhone::parse(m).map_err(|err| invalid(Column::Mobile, format!("{m:?} {err}")))
        })
        .transpose()?;
    Ok(PersonRecord {
        line: raw.line,
        hr_id,
        given_name,
        family_name,
        affiliation,
        birth_date,
        national_id,
        recovery_email,
        mobile,
    })
}

/// A name with its spaces collapsed; no control characters, at most [`MAX_NAME_CHARS`].
fn clean_name(raw: &str) -> Result<String, String> {
    if raw.chars().any(char::is_control) {
        return Err("contains a control character".to_owned());
    }
    let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("is longer than {MAX_NAME_CHARS} characters"));
    }
    Ok(name)
}

/// `dd-mm-yyyy` (the seeds' format, also with `/` or `.`) or ISO `yyyy-mm-dd`.
pub fn parse_date(raw: &str) -> Option<Date> {
    let raw = raw.trim();
    let parts: Vec<&str> = raw.split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    if !parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()))
    {
        return None;
    }
    let (year, month, day) = match (a.len(), c.len()) {
        (4, 1..=2) if raw.contains('-') => (*a, *b, *c),
        (1..=2, 4) => (*c, *b, *a),
        _ => return None,
    };
    if month.len() > 2 {
        return None;
    }
    let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    const KEY: &str = "an-import-test-key-of-32-bytes!!";

    fn ctx(key: Option<&NationalIdKey>) -> ReadContext<'_> {
        ReadContext {
            today: date!(2026 - 11 - 27),
            national_id_key: key,
        }
    }

    fn reasons(file: &ReadFile) -> Vec<(usize, String)> {
        file.rejections
            .iter()
            .map(|r| (r.line, r.reason.to_string()))
            .collect()
    }

    #[test]
    fn a_csv_with_bad_lines_keeps_the_good_ones_and_names_each_bad_line() {
        let key = NationalIdKey::new(KEY).unwrap();
        let csv = "\u{feff}hr_id,given_name,family_name,birth_date,affiliation,national_id,recovery_email,mobile\n\
            1001,Jean-Éric,O'Brien,20-10-1970,faculty,AB 123456,jeo@example.com,06 12 34 56 78\n\
            1002,Marie,Curie,31-02-1990,staff,,,\n\
            1003,Ana,Lopez,1999-04-01,wizard,,,\n\
            ,No,Id,,staff,,,\n\
            1005,Bad,Mail,,student,,not-an-address,\n\
            1006,Short,Line\n\
            \n\
            1007,\"Anne, Sophie\",Durand,01/02/2003,STUDENT,,,\n";
        let file = read(csv.as_bytes(), Format::Csv, ctx(Some(&key))).unwrap();
        assert_eq!(
            file.records
                .iter()
                .map(|r| (r.line, r.hr_id.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "1001"), (9, "1007")]
        );
        let first = &file.records[0];
        assert_eq!(first.given_name, "Jean-Éric");
        assert_eq!(first.birth_date, Some(date!(1970 - 10 - 20)));
        assert_eq!(
            first.mobile.as_ref().map(MobilePhone::as_str),
            Some("0612345678")
        );
        assert!(key.matches(
            &NationalId::parse("ab123456").unwrap(),
            first.national_id.as_ref().unwrap()
        ));
        assert_eq!(file.records[1].given_name, "Anne, Sophie");
        assert_eq!(file.records[1].affiliation, Affiliation::Student);
        assert_eq!(
            reasons(&file),
            vec![
                (3, "birth_date \"31-02-1990\" is not a date (dd-mm-yyyy, dd/mm/yyyy or yyyy-mm-dd)".to_owned()),
                (4, "affiliation \"wizard\" is not one of: staff, faculty, student, pupil, parent, affiliate".to_owned()),
                (5, "hr_id is missing".to_owned()),
                (6, "recovery_email \"not-an-address\" is not an e-mail address".to_owned()),
                (7, "has 3 fields where the header has 8".to_owned()),
            ]
        );
        // A rejected line's hr_id is known when readable (a full import spares that person).
        assert_eq!(
            file.rejections[0].hr_id.as_ref().map(HrId::as_str),
            Some("1002")
        );
        assert_eq!(file.rejections[2].hr_id, None);
    }

    #[test]
    fn semicolons_any_column_order_and_header_case_are_accepted() {
        let csv = "Affiliation ; FAMILY_NAME;given_name;hr_id;\nstaff;Dupont;Jean;s-12;\n";
        let file = read(csv.as_bytes(), Format::Csv, ctx(None)).unwrap();
        assert!(file.rejections.is_empty(), "{:?}", file.rejections);
        assert_eq!(file.records[0].hr_id.as_str(), "S-12");
        assert_eq!(file.records[0].family_name, "Dupont");
    }

    #[test]
    fn a_duplicate_hr_id_rejects_every_line_that_has_it() {
        let csv =
            "hr_id,given_name,family_name,affiliation\n7,A,B,staff\n8,C,D,staff\n7,E,F,staff\n";
        let file = read(csv.as_bytes(), Format::Csv, ctx(None)).unwrap();
        assert_eq!(file.records.len(), 1);
        assert_eq!(
            reasons(&file),
            vec![
                (2, "hr_id 7 is also on line(s) 4".to_owned()),
                (4, "hr_id 7 is also on line(s) 2".to_owned()),
            ]
        );
    }

    #[test]
    fn whole_file_problems_stop_the_import() {
        let bad = |text: &str| {
            read(text.as_bytes(), Format::Csv, ctx(None))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("hr_id,given_name,family_name,affiliation,shoe_size\n")
            .contains("unknown column(s): shoe_size"));
        assert!(bad("hr_id,given_name\n").contains("missing column(s): family_name, affiliation"));
        assert!(
            bad("hr_id,given_name,family_name,affiliation,hr_id\n").contains("hr_id appears twice")
        );
        assert!(bad("").contains("no header"));
        let with_id =
            "hr_id,given_name,family_name,affiliation,national_id\n1,A,B,staff,X1234567\n";
        assert!(matches!(
            read(with_id.as_bytes(), Format::Csv, ctx(None)),
            Err(ImportError::NationalIdKeyMissing)
        ));
        assert!(matches!(
            read(b"\xff\xfe", Format::Csv, ctx(None)),
            Err(ImportError::NotUtf8 { offset: 0 })
        ));
        assert!(read(b"{\"hr_id\": 1}", Format::Json, ctx(None)).is_err());
    }

    #[test]
    fn rejection_messages_never_repeat_a_national_id() {
        let key = NationalIdKey::new(KEY).unwrap();
        let csv = "hr_id,given_name,family_name,affiliation,national_id\n1,A,B,staff,SECRET99É\n";
        let file = read(csv.as_bytes(), Format::Csv, ctx(Some(&key))).unwrap();
        let text = format!("{:?} {}", file.rejections, file.rejections[0].reason);
        assert!(
            text.contains("national_id must be 4 to 32 letters and digits"),
            "{text}"
        );
        assert!(!text.contains("SECRET99"), "{text}");
    }

    #[test]
    fn json_records_report_the_line_where_they_start() {
        let key = NationalIdKey::new(KEY).unwrap();
        let json = r#"[
  {"hr_id": 2001, "given_name": "Zoé", "family_name": "Martin", "affiliation": "student",
   "birth_date": "2004-05-06", "national_id": "ZZ-998877", "mobile": null},
  {"hr_id": "2002", "given_name": "Paul", "family_name": "Roux", "affiliation": "staff",
   "birth_date": "06-05-2030"},
  "not an object",
  {"hr_id": "2004", "given_name": "Eve", "family_name": "Adam", "affiliation": "staff", "colour": "blue"},
  {"hr_id": "2005", "given_name": ["E"], "family_name": "Adam", "affiliation": "staff"}
]"#;
        let file = read(json.as_bytes(), Format::Json, ctx(Some(&key))).unwrap();
        assert_eq!(file.records.len(), 1);
        assert_eq!(file.records[0].line, 2);
        assert_eq!(file.records[0].hr_id.as_str(), "2001");
        assert!(file.records[0].national_id.is_some());
        assert_eq!(
            reasons(&file),
            vec![
                (4, "birth_date 2030-05-06 is not plausible (before 1900 or in the future)".to_owned()),
                (6, "is not a JSON object".to_owned()),
                (7, "has an unknown field \"colour\" (known: hr_id, given_name, family_name, affiliation, birth_date, national_id, recovery_email, mobile)".to_owned()),
                (8, "given_name must be a string".to_owned()),
            ]
        );
        assert_eq!(
            file.rejections[2].hr_id.as_ref().map(HrId::as_str),
            Some("2004")
        );
    }

    #[test]
    fn dates_in_the_seed_format_and_iso_parse() {
        assert_eq!(parse_date("20-10-1970"), Some(date!(1970 - 10 - 20)));
        assert_eq!(parse_date("5/3/2001"), Some(date!(2001 - 03 - 05)));
        assert_eq!(parse_date("05.03.2001"), Some(date!(2001 - 03 - 05)));
        assert_eq!(parse_date("1970-10-20"), Some(date!(1970 - 10 - 20)));
        for bad in [
            "1970/10/20",
            "20-10-70",
            "31-02-1990",
            "2001-13-01",
            "x",
            "1-2-3-4",
            "20--1970",
            "+1-01-2000",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
