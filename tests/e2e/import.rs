//! `sesame import`: provisioning from HR and student files, run as a real process against the
//! test's database.

use std::process::Output;
use std::sync::atomic::Ordering;

use sesame_core::account::{
    Account, AccountChanges, AccountProfile, AccountState, AccountWithProfile, NewAccount,
};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, HrId, IdentifierKind, LoginName};
use sesame_core::national_id::{NationalId, NationalIdKey};
use sesame_core::ports::ProfileRepo;
use sesame_lifecycle::import::read::Format;
use sesame_lifecycle::import::{ImportOptions, Importer, ImporterParts, Outcome};
use sesame_tests::{browser, Backend, TestApp, GOOD_PASSWORD};
use time::OffsetDateTime;

use crate::cli::{text, Cli};

const NATIONAL_ID_KEY: &str = "e2e-national-id-key-0123456789abcdef";

/// A CLI whose configuration gives imported staff `{login}@univ.example.org` (students
/// `{login}@etu.univ.example.org`) and holds a national ID key; logs at `level`.
fn import_cli(app: &TestApp, level: &str) -> Cli {
    let cli = Cli::for_app(app);
    let config = std::fs::read_to_string(&cli.config)
        .unwrap()
        .replace("level = \"warn\"", &format!("level = \"{level}\""));
    let config = format!(
        "{config}\n[lifecycle]\nemail_pattern = \"{{login}}@univ.example.org\"\nnational_id_key = \"{NATIONAL_ID_KEY}\"\n\n[lifecycle.email_patterns]\nstudent = \"{{login}}@etu.univ.example.org\"\n"
    );
    std::fs::write(&cli.config, config).unwrap();
    cli
}

/// Writes `content` to a fresh file with this extension and returns its path.
fn file(content: &str, extension: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "sesame-import-{}.{extension}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::write(&path, content).unwrap();
    path
}

fn import(cli: &Cli, path: &std::path::Path, flags: &[&str]) -> (Output, String) {
    let mut args = vec!["import", path.to_str().unwrap()];
    args.extend_from_slice(flags);
    let out = cli.run(&args, None);
    let printed = text(&out);
    (out, printed)
}

async fn state_of(app: &TestApp, login: &str) -> AccountState {
    app.services
        .accounts
        .get(&LoginName::parse(login).unwrap())
        .await
        .unwrap()
        .state
}

const HEADER: &str =
    "hr_id,given_name,family_name,birth_date,affiliation,national_id,recovery_email,mobile\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_is_named_the_others_are_provisioned_and_a_second_import_changes_nothing() {
    let app = TestApp::spawn().await;
    // Someone already has the first login a new Jean Dupont would get.
    app.create_user("jean.dupont", GOOD_PASSWORD).await;
    let cli = import_cli(&app, "warn");
    let csv = file(
        &format!(
            "{HEADER}\
             1001,Jean-Éric,O'Brien,20-10-1970,faculty,AB123456,jeo@example.com,06 12 34 56 78\n\
             1002,Jean,Dupont,31-02-1990,staff,,,\n\
             1003,Jean,Dupont,1985-04-01,staff,,,\n\
             1004,Jean,Dupont,02/03/1999,student,,jd@example.com,\n"
        ),
        "csv",
    );
    let (out, printed) = import(&cli, &csv, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rejected line fails the run: {printed}"
    );
    assert!(
        printed.contains("line 3: rejected: birth_date \"31-02-1990\" is not a date"),
        "{printed}"
    );
    assert!(
        printed.contains("1 line(s) rejected; the other lines were imported"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "line 2: created jean-eric.obrien <jean-eric.obrien@univ.example.org> (hr_id 1001), state provisioned"
        ),
        "{printed}"
    );
    // A collision gets the next free number, with the affiliation's e-mail pattern.
    assert!(
        printed.contains("line 4: created jean.dupont2 <jean.dupont2@univ.example.org>"),
        "{printed}"
    );
    assert!(
        printed.contains("line 5: created jean.dupont3 <jean.dupont3@etu.univ.example.org>"),
        "{printed}"
    );
    assert!(
        printed.contains("summary: 3 created, 0 updated, 0 unchanged, 0 disabled, 1 rejected"),
        "{printed}"
    );
    for login in ["jean-eric.obrien", "jean.dupont2", "jean.dupont3"] {
        assert_eq!(
            state_of(&app, login).await,
            AccountState::Provisioned,
            "{login}"
        );
    }
    let imported = app
        .services
        .profiles
        .find_by_hr_id(&HrId::parse("1001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(imported.account.login.as_str(), "jean-eric.obrien");
    assert_eq!(imported.account.affiliation.as_str(), "faculty");
    let recovery = imported.profile.recovery_email.unwrap();
    assert_eq!(recovery.address.as_str(), "jeo@example.com");
    assert!(!recovery.verified, "an address from HR is not proven");
    assert_eq!(
        imported.profile.mobile.unwrap().address.as_str(),
        "0612345678"
    );
    let kinds = app.audit_kinds("jean-eric.obrien").await;
    assert!(kinds.contains(&"account.created".to_owned()), "{kinds:?}");
    // A provisioned account cannot log in.
    assert_eq!(
        app.login_with(&browser(), "jean-eric.obrien", GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );

    let (_, again) = import(&cli, &csv, &[]);
    assert!(
        again.contains("summary: 0 created, 0 updated, 3 unchanged, 0 disabled, 1 rejected"),
        "{again}"
    );
    assert!(
        again.contains("nothing changed: the accounts already match the file"),
        "{again}"
    );
    std::fs::remove_file(csv).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_import_disables_the_absent_who_can_no_longer_log_in() {
    let app = TestApp::spawn().await;
    let cli = import_cli(&app, "warn");
    let first = file(
        &format!(
            "{HEADER}\
             2001,Marie,Curie,07-11-1967,staff,,,\n\
             2002,Pierre,Curie,15-05-1959,staff,,,\n\
             2003,Irène,Joliot,12-09-1997,student,,,\n"
        ),
        "csv",
    );
    let (out, printed) = import(&cli, &first, &[]);
    assert!(out.status.success(), "{printed}");
    let out = cli.run(
        &["account", "set-password", "marie.curie"],
        Some(&format!("{GOOD_PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    let marie = browser();
    assert_eq!(
        app.login_with(&marie, "marie.curie", GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );

    // The next staff export: Marie has left, Pierre's name changed. Students are another
    // source: Irène stays as she is.
    let second = file(
        &format!("{HEADER}2002,Pierre,Curie-Sklodowski,15-05-1959,staff,,,\n"),
        "csv",
    );
    let (out, dry) = import(&cli, &second, &["--full", "--dry-run"]);
    assert!(out.status.success(), "{dry}");
    assert!(
        dry.contains("would disable marie.curie (hr_id 2001): absent from the file")
            && dry.contains("line 2: would update pierre.curie (hr_id 2002): family_name")
            && dry.contains("dry run: nothing was written"),
        "{dry}"
    );
    assert_eq!(state_of(&app, "marie.curie").await, AccountState::Active);

    let (out, printed) = import(&cli, &second, &["--full"]);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("disabled marie.curie (hr_id 2001): absent from the file"),
        "{printed}"
    );
    assert!(
        printed.contains("--full: people of staff absent from the file are disabled"),
        "{printed}"
    );
    assert!(
        printed.contains("summary: 0 created, 1 updated, 0 unchanged, 1 disabled, 0 rejected"),
        "{printed}"
    );
    assert_eq!(state_of(&app, "marie.curie").await, AccountState::Disabled);
    if sesame_tests::backend() == Backend::Production {
        // The CLI shares Redis with the server: it ends her session itself.
        assert!(printed.contains("1 session(s) ended"), "{printed}");
    }
    // Either way, her open session is dead at its next use.
    let page = marie
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("id=\"current-user\""));
    assert_eq!(
        state_of(&app, "irene.joliot").await,
        AccountState::Provisioned
    );
    let pierre = app
        .services
        .accounts
        .get(&LoginName::parse("pierre.curie").unwrap())
        .await
        .unwrap();
    assert_eq!(pierre.family_name, "Curie-Sklodowski");
    assert_eq!(
        pierre.login.as_str(),
        "pierre.curie",
        "a login never changes"
    );

    assert_eq!(
        app.login_with(&browser(), "marie.curie", GOOD_PASSWORD, false)
            .await
            .status(),
        403,
        "a disabled account cannot log in"
    );
    let kinds = app.audit_kinds("marie.curie").await;
    assert!(
        kinds.contains(&"account.state_changed".to_owned())
            && kinds.contains(&"login.refused_state".to_owned()),
        "{kinds:?}"
    );
    assert!(app
        .audit_kinds("pierre.curie")
        .await
        .contains(&"account.updated".to_owned()));
    let recent = app.services.audit.recent(None, 50).await.unwrap();
    assert!(recent.iter().any(|e| e.kind == "import.completed"));

    // She comes back in a later export: provisioned again, to be activated anew.
    let third = file(
        &format!("{HEADER}2001,Marie,Curie,07-11-1967,staff,,,\n2002,Pierre,Curie-Sklodowski,15-05-1959,staff,,,\n"),
        "csv",
    );
    let (_, printed) = import(&cli, &third, &["--full"]);
    assert!(
        printed.contains("line 2: updated marie.curie (hr_id 2001): disabled, back to provisioned"),
        "{printed}"
    );
    assert_eq!(
        state_of(&app, "marie.curie").await,
        AccountState::Provisioned
    );
    for f in [first, second, third] {
        std::fs::remove_file(f).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_imports_nothing_when_a_line_is_bad() {
    let app = TestApp::spawn().await;
    let cli = import_cli(&app, "warn");
    let csv = file(
        "hr_id;given_name;family_name;affiliation;recovery_email\n\
         3001;Ada;Lovelace;staff;ada@example.com\n\
         3002;Alan;Turing;staff;not an address\n",
        "csv",
    );
    let (out, printed) = import(&cli, &csv, &["--strict"]);
    assert!(!out.status.success());
    assert!(
        printed.contains("line 3: rejected: recovery_email \"not an address\"")
            && printed.contains("--strict: nothing was imported because 1 line(s) are rejected"),
        "{printed}"
    );
    assert!(app
        .services
        .profiles
        .find_by_hr_id(&HrId::parse("3001").unwrap())
        .await
        .unwrap()
        .is_none());
    assert!(app
        .services
        .accounts_repo
        .find_credential("ada.lovelace")
        .await
        .unwrap()
        .is_none());
    std::fs::remove_file(csv).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_file_imports_like_a_csv() {
    let app = TestApp::spawn().await;
    let cli = import_cli(&app, "warn");
    let json = file(
        r#"[
  {"hr_id": 4001, "given_name": "Zoé", "family_name": "Lefèvre", "affiliation": "student",
   "birth_date": "2004-05-06", "recovery_email": "zoe@example.com"},
  {"hr_id": "4002", "given_name": "Luc", "family_name": "Roux", "affiliation": "janitor"}
]"#,
        "json",
    );
    let (_, printed) = import(&cli, &json, &[]);
    assert!(
        printed.contains(
            "line 2: created zoe.lefevre <zoe.lefevre@etu.univ.example.org> (hr_id 4001)"
        ) && printed.contains("line 4: rejected: affiliation \"janitor\""),
        "{printed}"
    );
    assert_eq!(
        state_of(&app, "zoe.lefevre").await,
        AccountState::Provisioned
    );
    let (out, again) = import(&cli, &json, &["--format", "json"]);
    assert!(!out.status.success());
    assert!(
        again.contains("0 created, 0 updated, 1 unchanged"),
        "{again}"
    );
    std::fs::remove_file(json).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_id_is_kept_as_a_keyed_hash_never_shown_nor_logged() {
    let app = TestApp::spawn().await;
    let cli = import_cli(&app, "debug");
    let csv = file(
        &format!(
            "{HEADER}\
             5001,Nadia,Benali,20-10-1970,staff,ZX 987654,,\n\
             5002,Omar,Idrissi,21-10-1971,staff,QW98765É,,\n"
        ),
        "csv",
    );
    let (_, printed) = import(&cli, &csv, &[]);
    assert!(
        printed.contains("created nadia.benali")
            && printed.contains("line 3: rejected: national_id must be 4 to 32 letters and digits"),
        "{printed}"
    );
    let show = cli.run(&["account", "show", "nadia.benali"], None);
    let shown = text(&show);
    assert!(shown.contains("national id:  on file"), "{shown}");
    assert!(shown.contains("hr id:        5001"), "{shown}");
    let config = cli.run(&["config", "check"], None);
    let config = text(&config);
    assert!(
        config.contains("national_id_key = \"********\""),
        "{config}"
    );
    for output in [&printed, &shown, &config] {
        for secret in ["987654", "98765", NATIONAL_ID_KEY] {
            assert!(!output.contains(secret), "{secret} leaked: {output}");
        }
    }
    let stored = app
        .services
        .profiles
        .find_by_hr_id(&HrId::parse("5001").unwrap())
        .await
        .unwrap()
        .unwrap()
        .profile
        .national_id
        .unwrap();
    let key = NationalIdKey::new(NATIONAL_ID_KEY).unwrap();
    assert!(key.matches(&NationalId::parse("zx987654").unwrap(), &stored));
    assert!(!stored.as_stored().contains("987654"));
    // Without a key, national IDs are refused as a whole.
    let keyless = Cli::for_app(&app);
    let (out, printed) = import(&keyless, &csv, &[]);
    assert!(!out.status.success());
    assert!(
        printed.contains("lifecycle.national_id_key is not set"),
        "{printed}"
    );
    std::fs::remove_file(csv).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_taken_as_another_accounts_login_is_refused_by_the_cli_and_rejects_the_import_line(
) {
    let app = TestApp::spawn().await;
    let cli = import_cli(&app, "warn");
    let letters: String = sesame_core::random::digits(6)
        .chars()
        .map(|d| char::from(b'a' + d.to_digit(10).map_or(0, |n| n as u8)))
        .collect();
    let family = format!("Espace{letters}");
    let login = format!("lea.{}", family.to_lowercase());
    // Someone made an account by hand whose login is the address Léa's import will give her.
    let address = format!("{login}@univ.example.org");
    let out = cli.run(
        &[
            "account",
            "add",
            &address,
            "--given-name",
            "Léa",
            "--family-name",
            &family,
            "--affiliation",
            "staff",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));

    // The CLI refuses an account whose e-mail is that login, and says why.
    let out = cli.run(
        &[
            "account",
            "add",
            "lea.autre",
            "--email",
            &address.to_uppercase(),
            "--given-name",
            "Léa",
            "--family-name",
            "Autre",
            "--affiliation",
            "staff",
        ],
        None,
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the email is already the login of another account"),
        "{}",
        text(&out)
    );

    // The import does not work around it with a number: the line is rejected, named.
    let csv = file(
        &format!("{HEADER}900913,Léa,{family},1990-01-01,staff,,,\n"),
        "csv",
    );
    let (out, printed) = import(&cli, &csv, &[]);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(&format!(
            "line 2: rejected: the email {address} this person would get is already the login of another account"
        )),
        "{printed}"
    );
    assert!(
        app.services
            .accounts
            .get(&LoginName::parse(&login).unwrap())
            .await
            .is_err(),
        "no account {login} was made"
    );
}

/// `login` is a provisioned account whose creation was audited exactly once.
async fn assert_provisioned_and_created_once(app: &TestApp, login: &str) {
    assert_eq!(
        state_of(app, login).await,
        AccountState::Provisioned,
        "{login}"
    );
    let kinds = app.audit_kinds(login).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "account.created").count(),
        1,
        "{login}: {kinds:?}"
    );
}

/// Letters only (family names are made of letters), random so that tests sharing a
/// database never meet each other's people.
fn random_letters() -> String {
    sesame_core::random::digits(8)
        .chars()
        .map(|d| char::from(b'a' + d.to_digit(10).map_or(0, |n| n as u8)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_group_written_several_people_at_a_time_numbers_namesakes_in_file_order() {
    let app = TestApp::spawn().await;
    let cli = import_cli(&app, "warn");
    let letters = random_letters();
    let lea = format!("Martin{letters}");
    let base = format!("lea.{}", lea.to_lowercase());
    // The bare login is someone's already; the address the tenth Léa would get is another
    // account's login (made by hand): her line is rejected, not numbered around.
    let crossed = format!("{base}11@etu.univ.example.org");
    for (login, affiliation) in [(base.as_str(), "staff"), (crossed.as_str(), "student")] {
        let out = cli.run(
            &[
                "account",
                "add",
                login,
                "--given-name",
                "Léa",
                "--family-name",
                &lea,
                "--affiliation",
                affiliation,
            ],
            None,
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    // Ten Léas and five Hugos among thirty people with names of their own, in one file: the
    // import writes several people at once (the test configuration's pool has four
    // connections), yet namesakes must be numbered as the file lists them.
    let hugo = format!("Petit{letters}");
    let mut csv = HEADER.to_owned();
    let mut expected: Vec<(usize, String)> = Vec::new();
    let (mut leas, mut hugos) = (0, 0);
    for i in 0..45 {
        let line = i + 2;
        let hr_id = format!("{letters}{i:03}");
        if i % 4 == 1 && leas < 10 {
            leas += 1;
            csv.push_str(&format!("{hr_id},Léa,{lea},2008-01-01,student,,,\n"));
            if leas < 10 {
                expected.push((line, format!("{base}{}", leas + 1)));
            }
        } else if i % 4 == 3 && hugos < 5 {
            hugos += 1;
            let login = match hugos {
                1 => format!("hugo.{}", hugo.to_lowercase()),
                n => format!("hugo.{}{n}", hugo.to_lowercase()),
            };
            csv.push_str(&format!("{hr_id},Hugo,{hugo},2008-01-01,student,,,\n"));
            expected.push((line, login));
        } else {
            let own: String = format!("{letters}{i:03}")
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(n) => char::from(b'a' + n as u8),
                    None => c,
                })
                .collect();
            csv.push_str(&format!("{hr_id},Zoé,Seule{own},2008-01-01,student,,,\n"));
            expected.push((line, format!("zoe.seule{own}")));
        }
    }
    assert_eq!((leas, hugos), (10, 5));
    let rejected_line = 2 + (0..45).filter(|i| i % 4 == 1).nth(9).unwrap();
    let path = file(&csv, "csv");
    let (out, printed) = import(&cli, &path, &[]);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("summary: 44 created, 0 updated, 0 unchanged, 0 disabled, 1 rejected"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "line {rejected_line}: rejected: the email {crossed} this person would get is already the login of another account"
        )),
        "{printed}"
    );
    for (line, login) in &expected {
        assert!(
            printed.contains(&format!(
                "line {line}: created {login} <{login}@etu.univ.example.org>"
            )),
            "line {line} should be {login}: {printed}"
        );
        assert_provisioned_and_created_once(&app, login).await;
    }
    // The report lists the people in file order.
    let created_lines: Vec<usize> = printed
        .lines()
        .filter_map(|l| l.strip_prefix("line "))
        .filter(|l| l.contains(": created "))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect();
    assert!(created_lines.windows(2).all(|w| w[0] < w[1]), "{printed}");

    let (_, again) = import(&cli, &path, &[]);
    assert!(
        again.contains("summary: 0 created, 0 updated, 44 unchanged, 0 disabled, 1 rejected"),
        "{again}"
    );
    std::fs::remove_file(path).unwrap();
}

/// The real profile store, except that just before the import's first batch is written,
/// another writer (the helpdesk, a second import) takes `taken` as a login: the race a batch
/// must survive. Counts how the import wrote.
#[derive(Debug)]
struct TakenMeanwhile {
    inner: std::sync::Arc<dyn ProfileRepo>,
    taken: String,
    batches: std::sync::atomic::AtomicUsize,
    one_by_one: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl ProfileRepo for TakenMeanwhile {
    async fn create_with_profile(
        &self,
        account: NewAccount,
        profile: AccountProfile,
        now: OffsetDateTime,
    ) -> Result<AccountWithProfile, RepoError> {
        self.one_by_one.fetch_add(1, Ordering::SeqCst);
        self.inner.create_with_profile(account, profile, now).await
    }
    async fn create_many_with_profiles(
        &self,
        people: Vec<(NewAccount, AccountProfile)>,
        now: OffsetDateTime,
    ) -> Result<Vec<AccountId>, RepoError> {
        if self.batches.fetch_add(1, Ordering::SeqCst) == 0 {
            let other = NewAccount {
                login: LoginName::parse(&self.taken).unwrap(),
                email: None,
                given_name: "Léa".to_owned(),
                family_name: "Autre".to_owned(),
                affiliation: Affiliation::Staff,
                state: AccountState::Active,
            };
            self.inner
                .create_with_profile(other, AccountProfile::default(), now)
                .await
                .unwrap();
        }
        self.inner.create_many_with_profiles(people, now).await
    }
    async fn find_with_profile(
        &self,
        id: AccountId,
    ) -> Result<Option<AccountWithProfile>, RepoError> {
        self.inner.find_with_profile(id).await
    }
    async fn find_by_hr_id(&self, hr_id: &HrId) -> Result<Option<AccountWithProfile>, RepoError> {
        self.inner.find_by_hr_id(hr_id).await
    }
    async fn accounts_with_hr_id(&self) -> Result<Vec<AccountWithProfile>, RepoError> {
        self.inner.accounts_with_hr_id().await
    }
    async fn search_accounts(
        &self,
        words: &[String],
        limit: i64,
    ) -> Result<Vec<Account>, RepoError> {
        self.inner.search_accounts(words, limit).await
    }
    async fn update_account(
        &self,
        id: AccountId,
        changes: &AccountChanges,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        self.inner.update_account(id, changes, now).await
    }
    async fn directory_page(
        &self,
        after: Option<&str>,
        affiliation: Option<Affiliation>,
        limit: i64,
    ) -> Result<Vec<AccountWithProfile>, RepoError> {
        self.inner.directory_page(after, affiliation, limit).await
    }
    async fn directory_entry(
        &self,
        identifier: &str,
    ) -> Result<Option<AccountWithProfile>, RepoError> {
        self.inner.directory_entry(identifier).await
    }
    async fn find_many_by_login(
        &self,
        logins: &[String],
    ) -> Result<Vec<AccountWithProfile>, RepoError> {
        self.inner.find_many_by_login(logins).await
    }
    async fn identifier_holders(
        &self,
        identifiers: &[String],
    ) -> Result<Vec<(String, AccountId, IdentifierKind)>, RepoError> {
        self.inner.identifier_holders(identifiers).await
    }
    async fn identifier_holder(
        &self,
        identifier: &str,
    ) -> Result<Option<(AccountId, IdentifierKind)>, RepoError> {
        self.inner.identifier_holder(identifier).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_taken_while_the_import_writes_sends_its_batch_person_by_person_to_the_next_number()
{
    let app = TestApp::spawn().await;
    let letters = random_letters();
    let family = format!("Course{letters}");
    let base = format!("lea.{}", family.to_lowercase());
    let profiles = std::sync::Arc::new(TakenMeanwhile {
        inner: std::sync::Arc::clone(&app.services.profiles),
        taken: base.clone(),
        batches: std::sync::atomic::AtomicUsize::new(0),
        one_by_one: std::sync::atomic::AtomicUsize::new(0),
    });
    let importer = Importer::new(ImporterParts {
        profiles: profiles.clone(),
        accounts: app.services.accounts.clone(),
        audit: std::sync::Arc::clone(&app.services.audit),
        sessions: app.services.sessions.clone(),
        clock: std::sync::Arc::clone(&app.services.clock),
        rules: app.settings.lifecycle.import_rules().unwrap(),
        parallelism: 4,
    });
    let csv = format!(
        "hr_id,given_name,family_name,affiliation\n\
         {letters}1,Léa,{family},student\n\
         {letters}2,Zoé,Seule{letters},student\n\
         {letters}3,Léa,{family},student\n"
    );
    let options = ImportOptions {
        format: Format::Csv,
        full: false,
        strict: false,
        dry_run: false,
    };
    let report = importer.run(csv.as_bytes(), options, "test").await.unwrap();

    assert!(report.rejections.is_empty(), "{:?}", report.rejections);
    let logins: Vec<String> = report
        .outcomes
        .iter()
        .map(|o| match o {
            Outcome::Created { login, .. } => login.as_str().to_owned(),
            other => panic!("expected a creation, got {other:?}"),
        })
        .collect();
    // The batch met the clash, was undone, and its people were written one by one: the
    // Léas moved on to the next numbers, still in file order; nobody was written twice.
    assert_eq!(
        logins,
        [
            format!("{base}2"),
            format!("zoe.seule{letters}"),
            format!("{base}3")
        ]
    );
    assert_eq!(profiles.batches.load(Ordering::SeqCst), 1);
    // The first Léa tried the bare login (taken) then the next; the others went through.
    assert_eq!(profiles.one_by_one.load(Ordering::SeqCst), 2 + 1 + 1);
    for login in &logins {
        assert_provisioned_and_created_once(&app, login).await;
    }
    assert_eq!(state_of(&app, &base).await, AccountState::Active);
}
