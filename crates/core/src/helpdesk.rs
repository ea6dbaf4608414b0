//! What the helpdesk records: why an account is blocked, that its next login must change the
//! password, and the assistance requests people send from the public form. The rules live in
//! `sesame-lifecycle` (`helpdesk`); storage is the [`HelpdeskRepo`](crate::ports::HelpdeskRepo)
//! port.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::ids::{AccountId, IdentifierError};

/// Why an operator blocked an account (the seed guide's cases: a phishing link clicked or a
/// password typed on a fraudulent site, activity judged suspicious, anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReason {
    /// The person fell for phishing (clicked a link, typed the password on a fake site).
    Phishing,
    /// Activity judged suspicious (by people or by monitoring).
    Suspicious,
    /// Anything else; the note says what.
    Other,
}

impl BlockReason {
    /// Stable lowercase name, as stored and typed on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phishing => "phishing",
            Self::Suspicious => "suspicious",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for BlockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BlockReason {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "phishing" => Ok(Self::Phishing),
            "suspicious" => Ok(Self::Suspicious),
            "other" => Ok(Self::Other),
            _ => Err(IdentifierError::Unknown("phishing, suspicious, other")),
        }
    }
}

/// The current block of a blocked account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRecord {
    /// Why.
    pub reason: BlockReason,
    /// The operator's note (never shown to the person).
    pub note: Option<String>,
    /// Who blocked it (`cli`, `admin:<name>`).
    pub blocked_by: String,
    /// When.
    pub blocked_at: OffsetDateTime,
}

/// How a request was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistanceClosure {
    /// When.
    pub closed_at: OffsetDateTime,
    /// By whom (`cli`, `admin:<name>`).
    pub closed_by: String,
    /// What was done.
    pub note: Option<String>,
}

/// Who sends an assistance request: the form asks each the identity fields that fit them (the
/// ENT 77 guide has a help form for parents, who have no institutional address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequesterKind {
    /// Staff or faculty (and hosted staff): login or institutional address, staff number.
    #[default]
    Staff,
    /// A student: login or institutional address, student number.
    Student,
    /// A pupil: login if known, school and class.
    Pupil,
    /// A parent: the child's name and school, their own login if they have one.
    Parent,
}

impl RequesterKind {
    /// Every kind, in the order the form offers them.
    pub const ALL: [Self; 4] = [Self::Staff, Self::Student, Self::Pupil, Self::Parent];

    /// Stable lowercase name, as stored and posted.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Student => "student",
            Self::Pupil => "pupil",
            Self::Parent => "parent",
        }
    }
}

impl fmt::Display for RequesterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequesterKind {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(IdentifierError::Unknown("staff, student, pupil, parent"))
    }
}

/// A request sent from the assistance form, as stored. Every text field is what the person
/// typed (bounded and checked for control characters by the form; empty when the form did not
/// ask it or it was left out); nothing here is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssistanceRequest {
    /// The reference given to the person, and the operator's handle on the request.
    pub reference: String,
    /// When it was sent.
    pub created_at: OffsetDateTime,
    /// Who the person says they are.
    pub kind: RequesterKind,
    /// Their name, as typed.
    pub name: String,
    /// The login or institutional address the person gives as theirs (their own, for a
    /// parent), or empty.
    pub login_or_email: String,
    /// Another, personal address to answer to, or empty (then a phone is given).
    pub personal_email: String,
    /// A phone number the helpdesk can call, or empty (then an address is given).
    pub phone: String,
    /// Staff or student number, to check identity on the phone, or empty.
    pub number: String,
    /// A pupil's school and class, or a parent's child's.
    pub school: String,
    /// A parent's child's name.
    pub child_name: String,
    /// The problem, in the person's words.
    pub description: String,
    /// The language of the form (`fr`, `en`): the answer's language.
    pub lang: String,
    /// The client address, as decided by the trusted-proxy rules.
    pub client_ip: Option<String>,
    /// The account of the login or address given, when there is one (never told to the
    /// sender).
    pub account_id: Option<AccountId>,
    /// Set once an operator closed it.
    pub closure: Option<AssistanceClosure>,
}

/// Which assistance requests a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestFilter {
    /// Those nobody closed yet.
    #[default]
    Open,
    /// Those closed.
    Closed,
    /// Both.
    All,
}

impl FromStr for RequestFilter {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            "all" => Ok(Self::All),
            _ => Err(IdentifierError::Unknown("open, closed, all")),
        }
    }
}

impl AssistanceRequest {
    /// Whether nobody closed it yet.
    pub fn is_open(&self) -> bool {
        self.closure.is_none()
    }
}

/// A disabled account, with when it was disabled (retention counts from there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledAccount {
    /// The account.
    pub account: crate::account::Account,
    /// When it became disabled.
    pub disabled_at: OffsetDateTime,
}
