//! Mail templates: minijinja, built in and overridable file by file from the theme directory,
//! as the pages are (docs/adr/0002-runtime-templates.md).
//!
//! Each kind has, per language (`fr`, `en`), a subject and a text body, and optionally an
//! HTML body:
//!
//! ```text
//! templates/mail/base.txt, base.html                  shared layouts ({% block content %})
//! templates/mail/<kind>/subject.<lang>.txt            one line
//! templates/mail/<kind>/body.<lang>.txt               required
//! templates/mail/<kind>/body.<lang>.html              optional (a theme may add one)
//! ```
//!
//! `.html` templates are HTML-escaped automatically; `.txt` ones are not. Templates receive
//! `lang`, `institution`, `public_url`, `helpdesk_url`, the message's values, and the filter
//! `datetime`, which shows an RFC 3339 time in the institution's time zone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, State, UndefinedBehavior, Value};
use sesame_core::error::MailError;
use sesame_core::i18n::Lang;
use sesame_core::mail::{MailKind, MailMessage, OutgoingMail};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use time_tz::{OffsetDateTimeExt, Tz};

use crate::error::MailSetupError;

/// Built-in mail templates.
const EMBEDDED: &[(&str, &str)] = &[
    ("mail/base.txt", include_str!("../templates/mail/base.txt")),
    (
        "mail/base.html",
        include_str!("../templates/mail/base.html"),
    ),
    (
        "mail/password_changed/subject.fr.txt",
        include_str!("../templates/mail/password_changed/subject.fr.txt"),
    ),
    (
        "mail/password_changed/subject.en.txt",
        include_str!("../templates/mail/password_changed/subject.en.txt"),
    ),
    (
        "mail/password_changed/body.fr.txt",
        include_str!("../templates/mail/password_changed/body.fr.txt"),
    ),
    (
        "mail/password_changed/body.en.txt",
        include_str!("../templates/mail/password_changed/body.en.txt"),
    ),
    (
        "mail/password_changed/body.fr.html",
        include_str!("../templates/mail/password_changed/body.fr.html"),
    ),
    (
        "mail/password_changed/body.en.html",
        include_str!("../templates/mail/password_changed/body.en.html"),
    ),
    (
        "mail/test/subject.fr.txt",
        include_str!("../templates/mail/test/subject.fr.txt"),
    ),
    (
        "mail/test/subject.en.txt",
        include_str!("../templates/mail/test/subject.en.txt"),
    ),
    (
        "mail/test/body.fr.txt",
        include_str!("../templates/mail/test/body.fr.txt"),
    ),
    (
        "mail/test/body.en.txt",
        include_str!("../templates/mail/test/body.en.txt"),
    ),
    // --- activation ---
    (
        "mail/activation_link/subject.fr.txt",
        include_str!("../templates/mail/activation_link/subject.fr.txt"),
    ),
    (
        "mail/activation_link/subject.en.txt",
        include_str!("../templates/mail/activation_link/subject.en.txt"),
    ),
    (
        "mail/activation_link/body.fr.txt",
        include_str!("../templates/mail/activation_link/body.fr.txt"),
    ),
    (
        "mail/activation_link/body.en.txt",
        include_str!("../templates/mail/activation_link/body.en.txt"),
    ),
    (
        "mail/mail_redirect_verification/subject.fr.txt",
        include_str!("../templates/mail/mail_redirect_verification/subject.fr.txt"),
    ),
    (
        "mail/mail_redirect_verification/subject.en.txt",
        include_str!("../templates/mail/mail_redirect_verification/subject.en.txt"),
    ),
    (
        "mail/mail_redirect_verification/body.fr.txt",
        include_str!("../templates/mail/mail_redirect_verification/body.fr.txt"),
    ),
    (
        "mail/mail_redirect_verification/body.en.txt",
        include_str!("../templates/mail/mail_redirect_verification/body.en.txt"),
    ),
    (
        "mail/password_reset/subject.fr.txt",
        include_str!("../templates/mail/password_reset/subject.fr.txt"),
    ),
    (
        "mail/password_reset/subject.en.txt",
        include_str!("../templates/mail/password_reset/subject.en.txt"),
    ),
    (
        "mail/password_reset/body.fr.txt",
        include_str!("../templates/mail/password_reset/body.fr.txt"),
    ),
    (
        "mail/password_reset/body.en.txt",
        include_str!("../templates/mail/password_reset/body.en.txt"),
    ),
    (
        "mail/address_verification/subject.fr.txt",
        include_str!("../templates/mail/address_verification/subject.fr.txt"),
    ),
    (
        "mail/address_verification/subject.en.txt",
        include_str!("../templates/mail/address_verification/subject.en.txt"),
    ),
    (
        "mail/address_verification/body.fr.txt",
        include_str!("../templates/mail/address_verification/body.fr.txt"),
    ),
    (
        "mail/address_verification/body.en.txt",
        include_str!("../templates/mail/address_verification/body.en.txt"),
    ),
    (
        "mail/second_factor_changed/subject.fr.txt",
        include_str!("../templates/mail/second_factor_changed/subject.fr.txt"),
    ),
    (
        "mail/second_factor_changed/subject.en.txt",
        include_str!("../templates/mail/second_factor_changed/subject.en.txt"),
    ),
    (
        "mail/second_factor_changed/body.fr.txt",
        include_str!("../templates/mail/second_factor_changed/body.fr.txt"),
    ),
    (
        "mail/second_factor_changed/body.en.txt",
        include_str!("../templates/mail/second_factor_changed/body.en.txt"),
    ),
    (
        "mail/contact_changed/subject.fr.txt",
        include_str!("../templates/mail/contact_changed/subject.fr.txt"),
    ),
    (
        "mail/contact_changed/subject.en.txt",
        include_str!("../templates/mail/contact_changed/subject.en.txt"),
    ),
    (
        "mail/contact_changed/body.fr.txt",
        include_str!("../templates/mail/contact_changed/body.fr.txt"),
    ),
    (
        "mail/contact_changed/body.en.txt",
        include_str!("../templates/mail/contact_changed/body.en.txt"),
    ),
    (
        "mail/verification_code/subject.fr.txt",
        include_str!("../templates/mail/verification_code/subject.fr.txt"),
    ),
    (
        "mail/verification_code/subject.en.txt",
        include_str!("../templates/mail/verification_code/subject.en.txt"),
    ),
    (
        "mail/verification_code/body.fr.txt",
        include_str!("../templates/mail/verification_code/body.fr.txt"),
    ),
    (
        "mail/verification_code/body.en.txt",
        include_str!("../templates/mail/verification_code/body.en.txt"),
    ),
    // --- helpdesk ---
    (
        "mail/assistance_request/subject.fr.txt",
        include_str!("../templates/mail/assistance_request/subject.fr.txt"),
    ),
    (
        "mail/assistance_request/subject.en.txt",
        include_str!("../templates/mail/assistance_request/subject.en.txt"),
    ),
    (
        "mail/assistance_request/body.fr.txt",
        include_str!("../templates/mail/assistance_request/body.fr.txt"),
    ),
    (
        "mail/assistance_request/body.en.txt",
        include_str!("../templates/mail/assistance_request/body.en.txt"),
    ),
    (
        "mail/assistance_received/subject.fr.txt",
        include_str!("../templates/mail/assistance_received/subject.fr.txt"),
    ),
    (
        "mail/assistance_received/subject.en.txt",
        include_str!("../templates/mail/assistance_received/subject.en.txt"),
    ),
    (
        "mail/assistance_received/body.fr.txt",
        include_str!("../templates/mail/assistance_received/body.fr.txt"),
    ),
    (
        "mail/assistance_received/body.en.txt",
        include_str!("../templates/mail/assistance_received/body.en.txt"),
    ),
    (
        "mail/assistance_closed/subject.fr.txt",
        include_str!("../templates/mail/assistance_closed/subject.fr.txt"),
    ),
    (
        "mail/assistance_closed/subject.en.txt",
        include_str!("../templates/mail/assistance_closed/subject.en.txt"),
    ),
    (
        "mail/assistance_closed/body.fr.txt",
        include_str!("../templates/mail/assistance_closed/body.fr.txt"),
    ),
    (
        "mail/assistance_closed/body.en.txt",
        include_str!("../templates/mail/assistance_closed/body.en.txt"),
    ),
    (
        "mail/account_unblocked/subject.fr.txt",
        include_str!("../templates/mail/account_unblocked/subject.fr.txt"),
    ),
    (
        "mail/account_unblocked/subject.en.txt",
        include_str!("../templates/mail/account_unblocked/subject.en.txt"),
    ),
    (
        "mail/account_unblocked/body.fr.txt",
        include_str!("../templates/mail/account_unblocked/body.fr.txt"),
    ),
    (
        "mail/account_unblocked/body.en.txt",
        include_str!("../templates/mail/account_unblocked/body.en.txt"),
    ),
];

/// The languages mails are written in.
const LANGS: [Lang; 2] = [Lang::Fr, Lang::En];

/// What every mail knows of the institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteInfo {
    /// `ui.institution_name`.
    pub institution: String,
    /// `server.public_url`, without trailing slash.
    pub public_url: String,
    /// `ui.helpdesk_url` (empty: none).
    pub helpdesk_url: String,
    /// `ui.time_zone` (an IANA name; UTC if unknown).
    pub time_zone: String,
}

/// The compiled mail templates.
#[derive(Debug, Clone)]
pub struct MailTemplates {
    env: Arc<Environment<'static>>,
    site: Arc<SiteInfo>,
}

/// Template names of a kind's parts.
fn part(kind: MailKind, name: &str, lang: Lang, ext: &str) -> String {
    format!("mail/{}/{name}.{}.{ext}", kind.as_str(), lang.tag())
}

impl MailTemplates {
    /// Loads the built-in templates, each overridden by `theme_dir/templates/<name>` when that
    /// file exists, plus the HTML bodies a theme adds. Every template is compiled now, so a
    /// broken theme stops the start, not a password reset.
    ///
    /// # Errors
    /// [`MailSetupError::Template`] naming the file at fault.
    pub fn load(theme_dir: Option<&Path>, site: SiteInfo) -> Result<Self, MailSetupError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        // An absent optional value writes nothing, never the text `None`.
        env.set_formatter(|out, state, value| {
            if value.is_none() || value.is_undefined() {
                return Ok(());
            }
            minijinja::escape_formatter(out, state, value)
        });
        let tz: &'static Tz =
            time_tz::timezones::get_by_name(&site.time_zone).unwrap_or(time_tz::timezones::db::UTC);
        env.add_filter("datetime", move |state: &State<'_, '_>, value: String| {
            format_datetime(&value, tz, state_lang(state))
        });

        let mut names: Vec<(String, Option<&'static str>)> = EMBEDDED
            .iter()
            .map(|(name, source)| ((*name).to_owned(), Some(*source)))
            .collect();
        // A theme may give a kind an HTML body it does not have built in.
        for kind in MailKind::ALL {
            for lang in LANGS {
                let html = part(*kind, "body", lang, "html");
                if !names.iter().any(|(n, _)| *n == html) {
                    names.push((html, None));
                }
            }
        }
        for (name, builtin) in names {
            let themed = theme_dir
                .map(|d| d.join("templates").join(&name))
                .filter(|p| p.is_file());
            let source = match (themed, builtin) {
                (Some(path), _) => {
                    std::fs::read_to_string(&path).map_err(|e| MailSetupError::Template {
                        name: path.display().to_string(),
                        reason: e.to_string(),
                    })?
                }
                (None, Some(source)) => source.to_owned(),
                (None, None) => continue,
            };
            env.add_template_owned(name.clone(), source)
                .map_err(|e| MailSetupError::Template {
                    name,
                    reason: e.to_string(),
                })?;
        }
        for kind in MailKind::ALL {
            for lang in LANGS {
                for name in [
                    part(*kind, "subject", lang, "txt"),
                    part(*kind, "body", lang, "txt"),
                ] {
                    if env.get_template(&name).is_err() {
                        return Err(MailSetupError::Template {
                            name,
                            reason: "missing".to_owned(),
                        });
                    }
                }
            }
        }
        Ok(Self {
            env: Arc::new(env),
            site: Arc::new(site),
        })
    }

    /// Renders `message` into the mail to queue.
    ///
    /// # Errors
    /// [`MailError::Template`] if a template fails to render.
    pub fn render(&self, message: &MailMessage) -> Result<OutgoingMail, MailError> {
        let mut ctx: BTreeMap<String, Value> = message
            .values
            .iter()
            .map(|(k, v)| (k.clone(), Value::from_serialize(v)))
            .collect();
        ctx.insert("lang".to_owned(), Value::from(message.lang.tag()));
        ctx.insert(
            "institution".to_owned(),
            Value::from(self.site.institution.as_str()),
        );
        ctx.insert(
            "public_url".to_owned(),
            Value::from(self.site.public_url.as_str()),
        );
        ctx.insert(
            "helpdesk_url".to_owned(),
            Value::from(self.site.helpdesk_url.as_str()),
        );
        let subject_name = part(message.kind, "subject", message.lang, "txt");
        let subject = one_line(&self.render_one(&subject_name, &ctx)?);
        ctx.insert("subject".to_owned(), Value::from(subject.as_str()));
        let text_body =
            tidy_text(&self.render_one(&part(message.kind, "body", message.lang, "txt"), &ctx)?);
        let html_name = part(message.kind, "body", message.lang, "html");
        let html_body = if self.env.get_template(&html_name).is_ok() {
            Some(self.render_one(&html_name, &ctx)?)
        } else {
            None
        };
        Ok(OutgoingMail {
            to: message.to.clone(),
            subject,
            text_body,
            html_body,
            kind: message.kind.as_str().to_owned(),
            account_id: message.account_id,
        })
    }

    fn render_one(&self, name: &str, ctx: &BTreeMap<String, Value>) -> Result<String, MailError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| MailError::Template {
                template: name.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// The `lang` of the template being rendered.
fn state_lang(state: &State<'_, '_>) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::from_tag))
        .unwrap_or_default()
}

/// An RFC 3339 time shown in `tz`: `27/11/2026 à 14:05` or `27 November 2026 at 14:05`.
/// Anything else is shown as given.
fn format_datetime(value: &str, tz: &Tz, lang: Lang) -> String {
    let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) else {
        return value.to_owned();
    };
    let local = at.to_timezone(tz);
    let (h, m) = (local.hour(), local.minute());
    match lang {
        Lang::Fr => format!(
            "{:02}/{:02}/{} à {h:02}:{m:02}",
            local.day(),
            u8::from(local.month()),
            local.year()
        ),
        Lang::En => format!(
            "{} {} {} at {h:02}:{m:02}",
            local.day(),
            local.month(),
            local.year()
        ),
    }
}

/// A subject on one line: every run of whitespace (newlines included) becomes one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A text body without trailing spaces (except the `-- ` signature separator), without runs
/// of more than one blank line, ending with one newline.
fn tidy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = if line == "-- " { line } else { line.trim_end() };
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 || out.is_empty() {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use sesame_core::ids::{AccountId, Email, LoginName};
    use time::macros::datetime;

    use super::*;

    fn site() -> SiteInfo {
        SiteInfo {
            institution: "Université Exemple".to_owned(),
            public_url: "https://sso.univ.example".to_owned(),
            helpdesk_url: "https://aide.univ.example".to_owned(),
            time_zone: "Europe/Paris".to_owned(),
        }
    }

    fn notice(lang: Lang) -> MailMessage {
        MailMessage::password_changed(
            Email::parse("alice@univ.example").unwrap(),
            lang,
            AccountId::new_random(),
            &LoginName::parse("alice.martin").unwrap(),
            datetime!(2026-11-27 13:05 UTC),
            Some("192.0.2.1"),
        )
    }

    #[test]
    fn every_kind_renders_in_both_languages() {
        let t = MailTemplates::load(None, site()).unwrap();
        for kind in MailKind::ALL {
            for lang in LANGS {
                let message =
                    MailMessage::new(*kind, Email::parse("alice@univ.example").unwrap(), lang);
                let mail = t.render(&message).unwrap();
                assert!(!mail.subject.is_empty(), "{kind} {lang:?}");
                assert!(!mail.subject.contains('\n'));
                assert!(mail.text_body.contains("Université Exemple"), "{kind}");
                assert_eq!(mail.kind, kind.as_str());
            }
        }
    }

    #[test]
    fn the_password_changed_notice_reads_well_in_french_and_english() {
        let t = MailTemplates::load(None, site()).unwrap();
        let fr = t.render(&notice(Lang::Fr)).unwrap();
        assert_eq!(
            fr.subject,
            "Université Exemple : le mot de passe de votre compte a été modifié"
        );
        // 13:05 UTC is 14:05 in Paris in November.
        assert!(
            fr.text_body.contains(
                "Le mot de passe du compte alice.martin a été modifié le 27/11/2026 à 14:05 depuis l'adresse 192.0.2.1."
            ),
            "{}",
            fr.text_body
        );
        assert!(fr.text_body.contains("\n-- \nUniversité Exemple\n"));
        assert!(fr
            .text_body
            .contains("Assistance : https://aide.univ.example"));
        assert!(!fr.text_body.contains("\n\n\n"));
        let html = fr.html_body.unwrap();
        assert!(html.contains("<strong>alice.martin</strong>"));
        assert!(html.contains("lang=\"fr\""));

        let en = t.render(&notice(Lang::En)).unwrap();
        assert_eq!(
            en.subject,
            "Université Exemple: your account password was changed"
        );
        assert!(en
            .text_body
            .contains("was changed on 27 November 2026 at 14:05 from the address 192.0.2.1."));
    }

    #[test]
    fn values_are_escaped_in_html_and_not_in_text() {
        let t = MailTemplates::load(None, site()).unwrap();
        let mut message = notice(Lang::Fr);
        message
            .values
            .insert("login".to_owned(), "<b>o'brien</b>".into());
        let mail = t.render(&message).unwrap();
        assert!(mail.text_body.contains("<b>o'brien</b>"));
        let html = mail.html_body.unwrap();
        assert!(!html.contains("<b>o'brien"), "{html}");
        assert!(html.contains("&lt;b&gt;"));
    }

    #[test]
    fn a_theme_overrides_a_template_and_adds_an_html_body() {
        let dir = std::env::temp_dir().join(format!(
            "sesame-mail-theme-{}",
            sesame_core::random::alphanumeric(8)
        ));
        std::fs::create_dir_all(dir.join("templates/mail/test")).unwrap();
        std::fs::write(
            dir.join("templates/mail/test/subject.fr.txt"),
            "[ENT]\n{{ institution }} vous écrit",
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/mail/test/body.fr.html"),
            "<p>Test {{ institution }}</p>",
        )
        .unwrap();
        let t = MailTemplates::load(Some(&dir), site()).unwrap();
        let to = Email::parse("alice@univ.example").unwrap();
        let fr = t
            .render(&MailMessage::test(
                to.clone(),
                Lang::Fr,
                datetime!(2026-11-27 13:05 UTC),
            ))
            .unwrap();
        assert_eq!(fr.subject, "[ENT] Université Exemple vous écrit");
        assert_eq!(
            fr.html_body.as_deref(),
            Some("<p>Test Université Exemple</p>")
        );
        // The other language keeps the built-in templates.
        let en = t
            .render(&MailMessage::test(
                to,
                Lang::En,
                datetime!(2026-11-27 13:05 UTC),
            ))
            .unwrap();
        assert_eq!(en.subject, "Université Exemple: test message");
        assert_eq!(en.html_body, None);

        std::fs::write(
            dir.join("templates/mail/test/body.en.txt"),
            "{% if %}broken",
        )
        .unwrap();
        let err = MailTemplates::load(Some(&dir), site()).unwrap_err();
        assert!(err.to_string().contains("mail/test/body.en.txt"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn text_bodies_are_tidied() {
        assert_eq!(
            tidy_text("\n\na  \n\n\n\nb\n-- \nc\n\n"),
            "a\n\nb\n-- \nc\n"
        );
    }
}
