//! Page rendering: minijinja templates loaded at run time, so an institution can re-brand and
//! reword every page from its theme directory without rebuilding Sesame (see
//! docs/adr/0002-runtime-templates.md). Auto-escaping is on for every `.html` template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment};
use sesame_core::i18n::Lang;

/// Built-in templates.
const EMBEDDED_TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    (
        "logged_in.html",
        include_str!("../templates/logged_in.html"),
    ),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    ("autopost.html", include_str!("../templates/autopost.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    (
        "applications.html",
        include_str!("../templates/applications.html"),
    ),
    (
        "logout_confirm.html",
        include_str!("../templates/logout_confirm.html"),
    ),
    // --- activation ---
    (
        "activation_start.html",
        include_str!("../templates/activation_start.html"),
    ),
    (
        "activation_identity.html",
        include_str!("../templates/activation_identity.html"),
    ),
    (
        "activation_code.html",
        include_str!("../templates/activation_code.html"),
    ),
    (
        "activation_first_login.html",
        include_str!("../templates/activation_first_login.html"),
    ),
    (
        "activation_confirm.html",
        include_str!("../templates/activation_confirm.html"),
    ),
    (
        "activation_result.html",
        include_str!("../templates/activation_result.html"),
    ),
    (
        "activation_step.html",
        include_str!("../templates/activation_step.html"),
    ),
    (
        "activation_done.html",
        include_str!("../templates/activation_done.html"),
    ),
    ("charter.html", include_str!("../templates/charter.html")),
    (
        "login_second_factor.html",
        include_str!("../templates/login_second_factor.html"),
    ),
    (
        "account_second_factor.html",
        include_str!("../templates/account_second_factor.html"),
    ),
    (
        "login_second_factor_reminder.html",
        include_str!("../templates/login_second_factor_reminder.html"),
    ),
    (
        "mfa_required.html",
        include_str!("../templates/mfa_required.html"),
    ),
    (
        "account_totp_enrol.html",
        include_str!("../templates/account_totp_enrol.html"),
    ),
    (
        "account_passkey_register.html",
        include_str!("../templates/account_passkey_register.html"),
    ),
    (
        "reset_forgot.html",
        include_str!("../templates/reset_forgot.html"),
    ),
    (
        "reset_sent.html",
        include_str!("../templates/reset_sent.html"),
    ),
    (
        "reset_code.html",
        include_str!("../templates/reset_code.html"),
    ),
    (
        "reset_helpdesk_code.html",
        include_str!("../templates/reset_helpdesk_code.html"),
    ),
    (
        "reset_new_password.html",
        include_str!("../templates/reset_new_password.html"),
    ),
    (
        "reset_done.html",
        include_str!("../templates/reset_done.html"),
    ),
    (
        "reset_invalid.html",
        include_str!("../templates/reset_invalid.html"),
    ),
    (
        "account_index.html",
        include_str!("../templates/account_index.html"),
    ),
    (
        "account_mobile_code.html",
        include_str!("../templates/account_mobile_code.html"),
    ),
    (
        "account_verified.html",
        include_str!("../templates/account_verified.html"),
    ),
    (
        "account_verify_confirm.html",
        include_str!("../templates/account_verify_confirm.html"),
    ),
    // --- helpdesk ---
    (
        "assistance.html",
        include_str!("../templates/assistance.html"),
    ),
    (
        "assistance_choose.html",
        include_str!("../templates/assistance_choose.html"),
    ),
    (
        "assistance_sent.html",
        include_str!("../templates/assistance_sent.html"),
    ),
    (
        "assistance_blocked.html",
        include_str!("../templates/assistance_blocked.html"),
    ),
    (
        "password_reset_required.html",
        include_str!("../templates/password_reset_required.html"),
    ),
    // --- helpdesk console ---
    (
        "helpdesk_search.html",
        include_str!("../templates/helpdesk_search.html"),
    ),
    (
        "helpdesk_account.html",
        include_str!("../templates/helpdesk_account.html"),
    ),
    (
        "helpdesk_requests.html",
        include_str!("../templates/helpdesk_requests.html"),
    ),
    (
        "helpdesk_request.html",
        include_str!("../templates/helpdesk_request.html"),
    ),
];

/// Built-in static files: (name, content type, bytes).
pub const EMBEDDED_STATIC: &[(&str, &str, &[u8])] = &[
    (
        "sesame.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/sesame.css"),
    ),
    (
        "sesame.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/sesame.js"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_bytes!("../static/logo.svg"),
    ),
    // --- activation ---
    (
        "activation.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/activation.js"),
    ),
    // --- passkeys ---
    (
        "webauthn.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/webauthn.js"),
    ),
];

const MESSAGES_FR: &str = include_str!("../messages/fr.toml");
const MESSAGES_EN: &str = include_str!("../messages/en.toml");

/// Writes a value into a page, auto-escaped, except that an absent value (`None` of an
/// optional field, which minijinja would print as the text `None`) writes nothing: a form
/// field of an address the person has not given must be empty, never pre-filled with `None`.
pub fn absent_as_empty(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    minijinja::escape_formatter(out, state, value)
}

/// A problem with the theme (bad template syntax, unreadable messages file).
#[derive(Debug, thiserror::Error)]
#[error("theme error: {0}")]
pub struct ThemeError(pub String);

/// Templates and texts, ready to render.
#[derive(Debug, Clone)]
pub struct Renderer {
    env: Arc<Environment<'static>>,
    messages: Arc<BTreeMap<Lang, BTreeMap<String, String>>>,
    theme_dir: Option<PathBuf>,
}

impl Renderer {
    /// Loads the built-in theme, overridden file by file by `theme_dir` if given. Every
    /// template is compiled now, so a broken theme stops the start, not a login.
    ///
    /// # Errors
    /// [`ThemeError`] naming the file at fault.
    pub fn load(theme_dir: Option<&Path>) -> Result<Self, ThemeError> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        env.set_formatter(absent_as_empty);
        for (name, builtin) in EMBEDDED_TEMPLATES {
            let source = match theme_dir.map(|d| d.join("templates").join(name)) {
                Some(path) if path.is_file() => std::fs::read_to_string(&path)
                    .map_err(|e| ThemeError(format!("{}: {e}", path.display())))?,
                _ => (*builtin).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| ThemeError(format!("template {name}: {e}")))?;
        }
        let mut messages = BTreeMap::new();
        for (lang, builtin) in [(Lang::Fr, MESSAGES_FR), (Lang::En, MESSAGES_EN)] {
            let mut table: BTreeMap<String, String> = toml::from_str(builtin)
                .map_err(|e| ThemeError(format!("built-in messages: {e}")))?;
            if let Some(path) =
                theme_dir.map(|d| d.join("messages").join(format!("{}.toml", lang.tag())))
            {
                if path.is_file() {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| ThemeError(format!("{}: {e}", path.display())))?;
                    let overrides: BTreeMap<String, String> = toml::from_str(&text)
                        .map_err(|e| ThemeError(format!("{}: {e}", path.display())))?;
                    table.extend(overrides);
                }
            }
            messages.insert(lang, table);
        }
        let renderer = Self {
            env: Arc::new(env),
            messages: Arc::new(messages),
            theme_dir: theme_dir.map(Path::to_path_buf),
        };
        Ok(renderer)
    }

    /// The text `key` in `lang` (the key itself if missing, so a gap shows rather than hides).
    pub fn text(&self, lang: Lang, key: &str) -> String {
        self.messages
            .get(&lang)
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    /// Every text of `lang`, for templates (`t.key`).
    pub fn texts(&self, lang: Lang) -> BTreeMap<String, String> {
        self.messages.get(&lang).cloned().unwrap_or_default()
    }

    /// Renders `template` with `ctx`.
    ///
    /// # Errors
    /// [`ThemeError`] if rendering fails (a theme template referring to something broken).
    pub fn render(&self, template: &str, ctx: minijinja::Value) -> Result<String, ThemeError> {
        self.env
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .map_err(|e| ThemeError(format!("rendering {template}: {e}")))
    }

    /// A static file: from the theme directory if it has it, else built in.
    pub fn static_file(&self, name: &str) -> Option<(&'static str, Vec<u8>)> {
        let (_, content_type, builtin) = EMBEDDED_STATIC.iter().find(|(n, _, _)| *n == name)?;
        if let Some(dir) = &self.theme_dir {
            let path = dir.join("static").join(name);
            if let Ok(bytes) = std::fs::read(&path) {
                return Some((content_type, bytes));
            }
        }
        Some((content_type, builtin.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let r = Renderer::load(None).unwrap();
        let fr: Vec<_> = r.texts(Lang::Fr).into_keys().collect();
        let en: Vec<_> = r.texts(Lang::En).into_keys().collect();
        assert_eq!(fr, en);
    }

    /// The guides' words, one term per thing: people who read "adresse de secours" in their
    /// institution's guide must find that term on every page, and the login spelt one way.
    #[test]
    fn the_french_texts_use_one_term_per_thing() {
        let r = Renderer::load(None).unwrap();
        for (key, text) in r.texts(Lang::Fr) {
            for other in [
                "adresse de récupération",
                "mobile de récupération",
                "prenom.nom",
                "Vous êtes connecté",
                "Vous êtes déconnecté",
                "Veuillez réessayer",
                "Réessayez après",
                "Réessayez à {time}",
                "personnel/enseignant inexistant",
            ] {
                assert!(
                    !text.to_lowercase().contains(&other.to_lowercase()),
                    "{key}: « {other} » in « {text} »"
                );
            }
        }
    }

    #[test]
    fn html_is_escaped() {
        let r = Renderer::load(None).unwrap();
        let html = r
            .render(
                "error.html",
                minijinja::context! { title => "<script>x</script>", message => "\"onmouseover=", t => r.texts(Lang::Fr) },
            )
            .unwrap();
        assert!(!html.contains("<script>x"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("\"onmouseover="));
    }

    #[test]
    fn an_absent_value_renders_as_nothing() {
        let r = Renderer::load(None).unwrap();
        let html = r
            .render(
                "activation_step.html",
                minijinja::context! { step => "contacts", recovery_email => None::<String>, mobile => None::<String>, t => r.texts(Lang::Fr) },
            )
            .unwrap();
        assert!(
            html.contains("name=\"recovery_email\" type=\"email\" value=\"\""),
            "{html}"
        );
        assert!(!html.contains("None"), "{html}");
    }

    #[test]
    fn a_theme_directory_overrides_texts_and_static_files() {
        let dir = std::env::temp_dir().join(format!(
            "sesame-theme-{}",
            sesame_core::random::alphanumeric(8)
        ));
        std::fs::create_dir_all(dir.join("messages")).unwrap();
        std::fs::create_dir_all(dir.join("static")).unwrap();
        std::fs::write(
            dir.join("messages/fr.toml"),
            "login_title = \"Bienvenue à l'ENT\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("static/sesame.css"), "body{color:red}").unwrap();
        let r = Renderer::load(Some(&dir)).unwrap();
        assert_eq!(r.text(Lang::Fr, "login_title"), "Bienvenue à l'ENT");
        assert_eq!(r.text(Lang::En, "login_title"), "Log in");
        assert_eq!(r.static_file("sesame.css").unwrap().1, b"body{color:red}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
