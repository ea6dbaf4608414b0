//! Property ("fuzz") targets of the import reader (issue 6): any bytes are read without a
//! panic, and every line of a well-formed file ends as exactly one record or rejection.
//! Default proptest case count in the unit run; `make fuzz` runs many more.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::{prop_assert, prop_assert_eq, proptest, Strategy};
use sesame_lifecycle::import::read::{read, Format, ReadContext};
use time::macros::date;

fn ctx() -> ReadContext<'static> {
    ReadContext {
        today: date!(2026 - 11 - 27),
        national_id_key: None,
    }
}

const HEADER: &str = "hr_id,given_name,family_name,affiliation,birth_date,recovery_email";

fn field() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 .@'éÉ-]{0,12}"
}

fn line() -> impl Strategy<Value = (String, Vec<String>)> {
    (
        "[0-9]{1,3}",
        proptest::collection::vec(field(), 4),
        proptest::sample::select(vec!["staff", "student", "faculty", "wizard", ""]),
    )
        .prop_map(|(hr_id, fields, affiliation)| {
            let cells = vec![
                hr_id.clone(),
                fields[0].clone(),
                fields[1].clone(),
                affiliation.to_owned(),
                fields[2].clone(),
                fields[3].clone(),
            ];
            (hr_id, cells)
        })
}

proptest! {
    #[test]
    fn prop_any_bytes_are_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        let _ = read(&bytes, Format::Csv, ctx());
        let _ = read(&bytes, Format::Json, ctx());
    }

    #[test]
    fn prop_any_text_after_a_valid_header_is_read_without_panic(body in "(.|\n){0,300}") {
        let text = format!("{HEADER}\n{body}");
        let _ = read(text.as_bytes(), Format::Csv, ctx());
    }

    #[test]
    fn prop_each_line_is_one_record_or_one_rejection(lines in proptest::collection::vec(line(), 1..25)) {
        let mut text = format!("{HEADER}\n");
        for (_, cells) in &lines {
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        let file = read(text.as_bytes(), Format::Csv, ctx())
            .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
        let mut seen = BTreeSet::new();
        for n in file.records.iter().map(|r| r.line).chain(file.rejections.iter().map(|r| r.line)) {
            prop_assert!((2..=lines.len() + 1).contains(&n), "line {n}");
            prop_assert!(seen.insert(n), "line {n} reported twice");
        }
        prop_assert_eq!(seen.len(), lines.len(), "every line reported once");
        // A repeated hr_id rejects every line that has it.
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for (hr_id, _) in &lines {
            *count.entry(hr_id.as_str()).or_default() += 1;
        }
        for record in &file.records {
            prop_assert_eq!(count.get(record.hr_id.as_str()).copied(), Some(1), "{}", record.hr_id.as_str());
        }
    }
}
