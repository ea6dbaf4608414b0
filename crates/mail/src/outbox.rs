//! The file outbox: one `<id>.eml` per mail in a directory, the embedded default, so
//! `sesame serve` sends "mail" with no setup, and tests read what was sent.
//!
//! A file is written under a temporary name and renamed, so a reader never sees half a mail;
//! on Unix the directory is created `0700` and files `0600` (mails carry one-time links).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sesame_core::mail::QueuedMail;

use crate::error::{MailSetupError, TransportError};
use crate::message::{build_message, Sender};
use crate::transport::MailTransport;

/// Writes each mail to `<dir>/<id>.eml`.
#[derive(Debug, Clone)]
pub struct OutboxTransport {
    dir: PathBuf,
    from: Sender,
}

impl OutboxTransport {
    /// An outbox in `dir`, created at the first mail if missing (so commands that send no
    /// mail leave no directory behind; the server calls [`OutboxTransport::prepare`] at start).
    pub fn new(dir: PathBuf, from: Sender) -> Self {
        Self { dir, from }
    }

    /// Creates the directory now, so a wrong path stops the start instead of delaying mail.
    ///
    /// # Errors
    /// [`MailSetupError::Outbox`] if the directory cannot be created.
    pub fn prepare(dir: &Path) -> Result<(), MailSetupError> {
        create_private_dir(dir).map_err(|e| MailSetupError::Outbox {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl MailTransport for OutboxTransport {
    async fn deliver(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        let bytes = build_message(mail, &self.from)?.formatted();
        let dir = self.dir.clone();
        let name = format!("{}.eml", mail.id);
        tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
            .await
            .map_err(|e| TransportError::Unavailable(format!("outbox task failed: {e}")))?
            .map_err(|e| TransportError::Unavailable(format!("outbox: {e}")))
    }

    fn name(&self) -> &'static str {
        "outbox"
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))
}
