//! `POST /admin/api/v1/imports`: a provisioning file (CSV or JSON, the format of
//! docs/lifecycle.md) imported as `sesame import` does, with the same report.
#![expect(
    unused_qualifications,
    reason = "utoipa's path macro qualifies the IntoParams type it expands `params(...)` into"
)]

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::api_keys::ApiScope;
use sesame_lifecycle::import::plan::FullImport;
use sesame_lifecycle::import::read::Format;
use sesame_lifecycle::import::{ImportOptions, Mode, Outcome};
use utoipa::{IntoParams, ToSchema};

use super::{authorize, respond};
use crate::operations::ImportDone;
use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// Largest provisioning file accepted (a 100 000-person CSV is about 15 MB).
const IMPORT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How to import.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `csv` or `json`; default: json for a `Content-Type: application/json` body, else csv.
    pub format: Option<String>,
    /// Also disable the people of the file's affiliations who are absent from it (`true`).
    #[serde(default)]
    pub full: bool,
    /// Import nothing if any line is rejected (`true`).
    #[serde(default)]
    pub strict: bool,
    /// Say what would be done, change nothing (`true`).
    #[serde(default)]
    pub dry_run: bool,
}

/// The report of an import: the same as `sesame import` prints (`lines`), and the same in a
/// form programs read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReportView {
    /// `applied`, `dry_run` (nothing written) or `refused_strict` (nothing written because
    /// `strict` and some line was rejected).
    pub mode: String,
    /// The summary.
    pub counts: ImportCounts,
    /// Lines not imported, by line.
    pub rejections: Vec<RejectionView>,
    /// What happened to each person, in file order; disables last.
    pub outcomes: Vec<OutcomeView>,
    /// What `full` did: `not_requested`, `applied` (people of `full_affiliations` absent from
    /// the file are disabled) or `skipped` (nobody disabled: `full_skipped_lines` have no
    /// readable `hr_id`).
    pub full: String,
    /// The affiliations a full import covered.
    pub full_affiliations: Vec<String>,
    /// The lines that stopped a full import from disabling anyone.
    pub full_skipped_lines: Vec<usize>,
    /// Applications sent a single-logout request for the sessions of disabled people.
    pub applications_notified: usize,
    /// Activation links queued, for the people created or back from `disabled` who have a
    /// recovery address.
    pub activation_links_queued: usize,
    /// The logins of the people who may activate by a mailed link but got none because they
    /// have no recovery address: give them a code, or import their address.
    pub no_activation_link: Vec<String>,
    /// The report as `sesame import` prints it, line by line.
    pub lines: Vec<String>,
}

/// The summary counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportCounts {
    /// New accounts.
    pub created: usize,
    /// Accounts changed.
    pub updated: usize,
    /// Accounts already as in the file.
    pub unchanged: usize,
    /// Accounts disabled.
    pub disabled: usize,
    /// Lines not imported.
    pub rejected: usize,
}

/// A line not imported.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionView {
    /// Line in the file (1 is the CSV header; for JSON, where the object starts).
    pub line: usize,
    /// Its `hr_id`, when readable.
    pub hr_id: Option<String>,
    /// Why (never repeats a national ID).
    pub reason: String,
}

/// What happened (or, in a dry run, would happen) to one person.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    /// `created`, `updated`, `unchanged` or `disabled`.
    pub action: String,
    /// Line in the file (none for a disable).
    pub line: Option<usize>,
    /// HR identifier.
    pub hr_id: String,
    /// Login.
    pub login: String,
    /// Institutional e-mail of a new account.
    pub email: Option<String>,
    /// Fields written by an update (names only).
    pub fields: Vec<String>,
    /// A disabled person came back: the account is `provisioned` again.
    pub reprovisioned: bool,
    /// Sessions ended by a disable.
    pub sessions_ended: usize,
}

impl ImportReportView {
    fn new(done: &ImportDone) -> Self {
        let report = &done.report;
        let c = report.counts();
        let (full, full_affiliations, full_skipped_lines) = match &report.full {
            FullImport::NotRequested => ("not_requested", Vec::new(), Vec::new()),
            FullImport::Source(affiliations) => (
                "applied",
                affiliations.iter().map(|a| a.as_str().to_owned()).collect(),
                Vec::new(),
            ),
            FullImport::Skipped { lines } => ("skipped", Vec::new(), lines.clone()),
        };
        Self {
            mode: match report.mode {
                Mode::Applied => "applied",
                Mode::DryRun => "dry_run",
                Mode::RefusedStrict => "refused_strict",
            }
            .to_owned(),
            counts: ImportCounts {
                created: c.created,
                updated: c.updated,
                unchanged: c.unchanged,
                disabled: c.disabled,
                rejected: c.rejected,
            },
            rejections: report
                .rejections
                .iter()
                .map(|r| RejectionView {
                    line: r.line,
                    hr_id: r.hr_id.as_ref().map(ToString::to_string),
                    reason: r.reason.to_string(),
                })
                .collect(),
            outcomes: report.outcomes.iter().map(outcome_view).collect(),
            full: full.to_owned(),
            full_affiliations,
            full_skipped_lines,
            applications_notified: done.notified,
            activation_links_queued: done.activation_links,
            no_activation_link: done
                .no_activation_link
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect(),
            lines: crate::operations::import_report_lines(done),
        }
    }
}

fn outcome_view(outcome: &Outcome) -> OutcomeView {
    let base = |action: &str, line: Option<usize>, hr_id: &dyn ToString, login: &dyn ToString| {
        OutcomeView {
            action: action.to_owned(),
            line,
            hr_id: hr_id.to_string(),
            login: login.to_string(),
            email: None,
            fields: Vec::new(),
            reprovisioned: false,
            sessions_ended: 0,
        }
    };
    match outcome {
        Outcome::Created {
            line,
            hr_id,
            login,
            email,
        } => OutcomeView {
            email: email.as_ref().map(ToString::to_string),
            ..base("created", Some(*line), hr_id, login)
        },
        Outcome::Updated {
            line,
            hr_id,
            login,
            fields,
            reprovisioned,
        } => OutcomeView {
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            reprovisioned: *reprovisioned,
            ..base("updated", Some(*line), hr_id, login)
        },
        Outcome::Unchanged { line, hr_id, login } => base("unchanged", Some(*line), hr_id, login),
        Outcome::Disabled {
            hr_id,
            login,
            sessions_ended,
            ..
        } => OutcomeView {
            sessions_ended: sessions_ended.len(),
            ..base("disabled", None, hr_id, login)
        },
    }
}

/// Imports a provisioning file: new people get a `provisioned` account with a generated
/// login, changed ones are updated, and with `full=true` the absent are disabled. A rejected
/// line does not stop the others (unless `strict=true`); importing the same file again
/// changes nothing. The answer is 200 with the report whatever the lines gave; 422 when the
/// file as a whole cannot be read.
#[utoipa::path(
    post,
    path = "/admin/api/v1/imports",
    tag = "imports",
    params(ImportQuery),
    request_body(
        description = "The file: CSV (a header line naming the columns) or a JSON array of objects",
        content(
            (String = "text/csv"),
            (Vec<serde_json::Value> = "application/json"),
        )
    ),
    responses(
        (status = 200, description = "The report (look at `mode` and `counts.rejected`)", body = ImportReportView),
        (status = 400, description = "A query parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks `imports`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is over 32 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The file cannot be read as a whole (encoding, header, JSON)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["imports"]))
)]
pub async fn create_import(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    respond(import(&state, &req, body).await)
}

/// Reads the body, at most `limit` bytes.
async fn read_body(mut body: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    use futures::StreamExt;

    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the file is larger than {} MiB", limit / (1024 * 1024)),
            )
            .into());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

async fn import(
    state: &AppState,
    req: &HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // The key is checked before the (possibly large) body is read.
    let key = authorize(state, req, Some(ApiScope::Imports)).await?;
    let query = web::Query::<ImportQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(e.to_string()))?
        .into_inner();
    let format = match query.format.as_deref() {
        Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        Some(_) => {
            return Err(Problem::bad_request("format must be csv or json").into());
        }
        None => {
            let json = req
                .headers()
                .get(actix_web::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("application/json"));
            if json {
                Format::Json
            } else {
                Format::Csv
            }
        }
    };
    let rules = state
        .settings
        .lifecycle
        .import_rules()
        .map_err(|e| Problem::internal(&e))?;
    let options = ImportOptions {
        format,
        full: query.full,
        strict: query.strict,
        dry_run: query.dry_run,
    };
    let body = read_body(body, IMPORT_BODY_LIMIT).await?;
    // Half the pool: the server goes on serving logins meanwhile.
    let parallelism = (state.settings.database.max_connections as usize / 2).max(1);
    let done = crate::operations::import(
        &state.services,
        rules,
        &body,
        options,
        &key.actor(),
        parallelism,
    )
    .await
    .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(ImportReportView::new(&done)))
}
