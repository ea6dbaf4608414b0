//! `[ui]`: look and wording of the pages.

use serde::{Deserialize, Serialize};

/// `[ui]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSettings {
    /// Shown in titles and texts.
    pub institution_name: String,
    /// Directory overriding templates (`templates/`), static files (`static/`) and texts
    /// (`messages/fr.toml`, `messages/en.toml`); empty for the built-in theme.
    pub theme_dir: String,
    /// Where the "help" links point; empty hides them.
    pub helpdesk_url: String,
    /// IANA time zone used to show times to people ("try again at 14:05"), e.g.
    /// `Europe/Paris` (daylight saving included).
    pub time_zone: String,
    /// Words no password may contain (institution name, city…).
    pub context_words: Vec<String>,
}
