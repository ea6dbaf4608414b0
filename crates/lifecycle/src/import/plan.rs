//! What an import will do, decided from the file and the accounts that have an HR identifier,
//! without touching anything.

use std::collections::{BTreeSet, HashMap, HashSet};

use sesame_core::account::{
    Account, AccountChanges, AccountProfile, AccountState, AccountWithProfile, Contact,
};
use sesame_core::ids::{Affiliation, HrId};

use super::read::{PersonRecord, ReadFile, RejectReason, Rejection};
use crate::login::base_login;

/// One step of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A new person: an account in state `provisioned`, login made from `base_login`.
    Create {
        /// The person.
        record: PersonRecord,
        /// `prenom.nom`, before any collision number.
        base_login: String,
    },
    /// A known person whose data changed.
    Update {
        /// The person as the file describes them.
        record: PersonRecord,
        /// The account as it is.
        account: Account,
        /// What to write (boxed: the largest part of a step).
        changes: Box<AccountChanges>,
        /// The account was disabled and comes back: it returns to `provisioned`.
        reprovision: bool,
    },
    /// A known person whose data is already as in the file.
    Unchanged {
        /// The person.
        record: PersonRecord,
        /// The account.
        account: Account,
    },
    /// A person of the file's source who is no longer in it (full import only).
    Disable {
        /// The account.
        account: Account,
        /// Its HR identifier.
        hr_id: HrId,
    },
}

/// Whether a full import disables the absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullImport {
    /// Not asked for (`--full` absent).
    NotRequested,
    /// People of these affiliations absent from the file are disabled.
    Source(Vec<Affiliation>),
    /// Asked for, but nobody is disabled: some rejected lines have no readable `hr_id`, so
    /// their people cannot be told from leavers.
    Skipped {
        /// The lines without a readable `hr_id`.
        lines: Vec<usize>,
    },
}

/// Everything an import will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Steps in file order; disables last, by HR identifier.
    pub steps: Vec<Step>,
    /// Lines not imported, by line.
    pub rejections: Vec<Rejection>,
    /// What `--full` does.
    pub full: FullImport,
}

/// Decides what to do with each record of `file`, given every account that has an HR
/// identifier. With `full`, accounts of the affiliations present in the file whose `hr_id`
/// is absent from it (on no line, not even a rejected one) are disabled.
pub fn plan(file: ReadFile, existing: Vec<AccountWithProfile>, full: bool) -> Plan {
    let ReadFile {
        records,
        mut rejections,
    } = file;
    let mut by_hr_id: HashMap<HrId, AccountWithProfile> = existing
        .into_iter()
        .filter_map(|a| a.profile.hr_id.clone().map(|h| (h, a)))
        .collect();
    let mut present: HashSet<HrId> = rejections.iter().filter_map(|r| r.hr_id.clone()).collect();
    let mut source: BTreeSet<Affiliation> =
        rejections.iter().filter_map(|r| r.affiliation).collect();
    let mut steps = Vec::with_capacity(records.len());
    for record in records {
        present.insert(record.hr_id.clone());
        source.insert(record.affiliation);
        match by_hr_id.get(&record.hr_id) {
            Some(current) => {
                let changes = changes_for(&record, &current.account, &current.profile);
                let reprovision = current.account.state == AccountState::Disabled;
                if changes.is_empty() && !reprovision {
                    steps.push(Step::Unchanged {
                        record,
                        account: current.account.clone(),
                    });
                } else {
                    steps.push(Step::Update {
                        record,
                        account: current.account.clone(),
                        changes: Box::new(changes),
                        reprovision,
                    });
                }
            }
            None => match base_login(&record.given_name, &record.family_name) {
                Ok(base_login) => steps.push(Step::Create { record, base_login }),
                Err(e) => rejections.push(Rejection {
                    line: record.line,
                    hr_id: Some(record.hr_id),
                    affiliation: Some(record.affiliation),
                    reason: RejectReason::NoLogin(e),
                }),
            },
        }
    }
    rejections.sort_by_key(|r| r.line);
    let full = if !full {
        FullImport::NotRequested
    } else {
        let unknown: Vec<usize> = rejections
            .iter()
            .filter(|r| r.hr_id.is_none())
            .map(|r| r.line)
            .collect();
        if unknown.is_empty() {
            by_hr_id.retain(|hr_id, a| {
                !present.contains(hr_id)
                    && source.contains(&a.account.affiliation)
                    && a.account.state != AccountState::Disabled
            });
            let mut leavers: Vec<(HrId, AccountWithProfile)> = by_hr_id.into_iter().collect();
            leavers.sort_by(|a, b| a.0.cmp(&b.0));
            steps.extend(leavers.into_iter().map(|(hr_id, a)| Step::Disable {
                account: a.account,
                hr_id,
            }));
            FullImport::Source(source.into_iter().collect())
        } else {
            FullImport::Skipped { lines: unknown }
        }
    };
    Plan {
        steps,
        rejections,
        full,
    }
}

/// What must be written so the account matches the record.
///
/// Names, affiliation, birth date and national ID follow the file (an empty cell never erases
/// a stored value). Recovery contacts belong to the person once proven: the file only fills
/// in a missing one or replaces one not yet verified, and what it gives is unverified.
pub fn changes_for(
    record: &PersonRecord,
    account: &Account,
    profile: &AccountProfile,
) -> AccountChanges {
    fn differs<T: PartialEq>(new: Option<&T>, old: Option<&T>) -> bool {
        new.is_some() && new != old
    }
    fn contact<T: PartialEq + Clone>(
        new: Option<&T>,
        old: Option<&Contact<T>>,
    ) -> Option<Option<Contact<T>>> {
        let new = new?;
        match old {
            Some(c) if c.verified || &c.address == new => None,
            _ => Some(Some(Contact::unverified(new.clone()))),
        }
    }
    AccountChanges {
        given_name: (record.given_name != account.given_name).then(|| record.given_name.clone()),
        family_name: (record.family_name != account.family_name)
            .then(|| record.family_name.clone()),
        affiliation: (record.affiliation != account.affiliation).then_some(record.affiliation),
        birth_date: differs(record.birth_date.as_ref(), profile.birth_date.as_ref())
            .then_some(record.birth_date)
            .flatten(),
        national_id: differs(record.national_id.as_ref(), profile.national_id.as_ref())
            .then(|| record.national_id.clone())
            .flatten(),
        recovery_email: contact(
            record.recovery_email.as_ref(),
            profile.recovery_email.as_ref(),
        ),
        mobile: contact(record.mobile.as_ref(), profile.mobile.as_ref()),
        ..AccountChanges::default()
    }
}

#[cfg(test)]
mod tests {
    use sesame_core::account::{Account, AccountProfile};
    use sesame_core::ids::{AccountId, Email, LoginName};
    use time::macros::{date, datetime};

    use super::*;
    use crate::import::read::ReadFile;

    fn record(
        line: usize,
        hr_id: &str,
        given: &str,
        family: &str,
        affiliation: Affiliation,
    ) -> PersonRecord {
        PersonRecord {
            line,
            hr_id: HrId::parse(hr_id).unwrap(),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            affiliation,
            birth_date: None,
            national_id: None,
            recovery_email: None,
            mobile: None,
        }
    }

    fn existing(
        hr_id: &str,
        login: &str,
        affiliation: Affiliation,
        state: AccountState,
    ) -> AccountWithProfile {
        AccountWithProfile {
            account: Account {
                id: AccountId::new_random(),
                login: LoginName::parse(login).unwrap(),
                email: None,
                given_name: "Jean".to_owned(),
                family_name: "Dupont".to_owned(),
                affiliation,
                state,
                created_at: datetime!(2026-01-01 0:00 UTC),
                updated_at: datetime!(2026-01-01 0:00 UTC),
            },
            profile: AccountProfile {
                hr_id: Some(HrId::parse(hr_id).unwrap()),
                ..AccountProfile::default()
            },
        }
    }

    fn kinds(plan: &Plan) -> Vec<(&'static str, String)> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::Create { base_login, .. } => ("create", base_login.clone()),
                Step::Update { account, .. } => ("update", account.login.to_string()),
                Step::Unchanged { account, .. } => ("unchanged", account.login.to_string()),
                Step::Disable { account, .. } => ("disable", account.login.to_string()),
            })
            .collect()
    }

    #[test]
    fn new_known_changed_and_absent_people() {
        let file = ReadFile {
            records: vec![
                record(2, "1", "Jean", "Dupont", Affiliation::Staff),
                record(3, "2", "Jean", "Dupond", Affiliation::Staff),
                record(4, "3", "Hélène", "Lefèvre", Affiliation::Staff),
            ],
            rejections: vec![],
        };
        let db = vec![
            existing("1", "jean.dupont", Affiliation::Staff, AccountState::Active),
            existing(
                "2",
                "jean.dupont2",
                Affiliation::Staff,
                AccountState::Active,
            ),
            existing("9", "left.staff", Affiliation::Staff, AccountState::Active),
            existing("8", "a.student", Affiliation::Student, AccountState::Active),
            existing(
                "7",
                "gone.already",
                Affiliation::Staff,
                AccountState::Disabled,
            ),
        ];
        let partial = plan(file.clone(), db.clone(), false);
        assert_eq!(
            kinds(&partial),
            vec![
                ("unchanged", "jean.dupont".to_owned()),
                ("update", "jean.dupont2".to_owned()),
                ("create", "helene.lefevre".to_owned()),
            ]
        );
        assert_eq!(partial.full, FullImport::NotRequested);
        let Step::Update { changes, .. } = &partial.steps[1] else {
            panic!()
        };
        assert_eq!(changes.field_names(), vec!["family_name"]);

        // Full: only the staff member absent from a staff file is disabled (not the student,
        // nor the one disabled already).
        let full = plan(file, db, true);
        assert_eq!(
            full.steps.last().map(|s| kinds(&Plan {
                steps: vec![s.clone()],
                rejections: vec![],
                full: FullImport::NotRequested
            })[0]
                .clone()),
            Some(("disable", "left.staff".to_owned()))
        );
        assert_eq!(full.steps.len(), 4);
        assert_eq!(full.full, FullImport::Source(vec![Affiliation::Staff]));
    }

    #[test]
    fn a_rejected_line_protects_its_person_and_one_without_hr_id_stops_all_disabling() {
        let db = vec![
            existing("1", "jean.dupont", Affiliation::Staff, AccountState::Active),
            existing("2", "marie.curie", Affiliation::Staff, AccountState::Active),
        ];
        let rejected = |hr_id: Option<&str>| Rejection {
            line: 3,
            hr_id: hr_id.map(|h| HrId::parse(h).unwrap()),
            affiliation: Some(Affiliation::Staff),
            reason: RejectReason::Missing(super::super::read::Column::GivenName),
        };
        let file = ReadFile {
            records: vec![record(2, "1", "Jean", "Dupont", Affiliation::Staff)],
            rejections: vec![rejected(Some("2"))],
        };
        let spared = plan(file, db.clone(), true);
        assert!(!spared
            .steps
            .iter()
            .any(|s| matches!(s, Step::Disable { .. })));

        let file = ReadFile {
            records: vec![record(2, "1", "Jean", "Dupont", Affiliation::Staff)],
            rejections: vec![rejected(None)],
        };
        let skipped = plan(file, db, true);
        assert!(!skipped
            .steps
            .iter()
            .any(|s| matches!(s, Step::Disable { .. })));
        assert_eq!(skipped.full, FullImport::Skipped { lines: vec![3] });
    }

    #[test]
    fn a_disabled_person_who_comes_back_is_provisioned_again() {
        let db = vec![existing(
            "1",
            "jean.dupont",
            Affiliation::Staff,
            AccountState::Disabled,
        )];
        let file = ReadFile {
            records: vec![record(2, "1", "Jean", "Dupont", Affiliation::Staff)],
            rejections: vec![],
        };
        let p = plan(file, db, false);
        assert!(
            matches!(&p.steps[0], Step::Update { reprovision: true, changes, .. } if changes.is_empty())
        );
    }

    #[test]
    fn names_that_make_no_login_are_rejected() {
        let file = ReadFile {
            records: vec![record(5, "1", "محمد", "Alaoui", Affiliation::Staff)],
            rejections: vec![],
        };
        let p = plan(file, vec![], false);
        assert!(p.steps.is_empty());
        assert_eq!(p.rejections[0].line, 5);
        assert!(p.rejections[0]
            .reason
            .to_string()
            .contains("given_name has no Latin letter"));
    }

    #[test]
    fn empty_cells_never_erase_and_verified_contacts_are_the_persons() {
        let mut current = existing("1", "jean.dupont", Affiliation::Staff, AccountState::Active);
        current.profile.birth_date = Some(date!(1970 - 10 - 20));
        current.profile.recovery_email =
            Some(Contact::verified(Email::parse("mine@example.com").unwrap()));
        current.profile.mobile = Some(Contact::unverified("0612345678".parse_mobile()));
        let mut r = record(2, "1", "Jean", "Dupont", Affiliation::Faculty);
        r.recovery_email = Some(Email::parse("hr@example.com").unwrap());
        r.mobile = Some("0699999999".parse_mobile());
        let changes = changes_for(&r, &current.account, &current.profile);
        assert_eq!(changes.field_names(), vec!["affiliation", "mobile"]);
        assert_eq!(
            changes.mobile,
            Some(Some(Contact::unverified("0699999999".parse_mobile())))
        );
    }

    trait ParseMobile {
        fn parse_mobile(&self) -> sesame_core::ids::MobilePhone;
    }
    impl ParseMobile for str {
        fn parse_mobile(&self) -> sesame_core::ids::MobilePhone {
            sesame_core::ids::MobilePhone::parse(self).unwrap()
        }
    }
}
