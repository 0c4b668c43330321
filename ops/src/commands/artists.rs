use clap::Subcommand;
use shared::operator::OperatorTask;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum Artists {
    /// Adds an artist, so an admin can issue their token.
    Create {
        #[arg(long)]
        name: String,
        /// Kept in the database only; never written to the audit log.
        #[arg(long)]
        email: String,
        #[arg(long)]
        bio: Option<String>,
        /// An https:// address.
        #[arg(long)]
        website: Option<String>,
    },
    /// Erases an artist now (the retention function runs it): personal data, works, every object version in
    /// the primary and DR buckets, tokens. Prints the erasure record and the
    /// backups that still hold the artist until the rotation removes them.
    Erase {
        /// The artist's id.
        artist: Uuid,
        /// Required: an erasure cannot be undone.
        #[arg(long)]
        confirm: bool,
    },
    /// Erasure records, newest first.
    Erasures {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// The newest artists, with their emails and live token counts.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

impl Artists {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Create { name, email, bio, website } => {
                OperatorTask::CreateArtist { name, email, bio, website }
            }
            Self::List { limit } => OperatorTask::ListArtists { limit },
            Self::Erase { artist, confirm } => {
                OperatorTask::EraseArtist { artist_id: artist, confirmed: confirm }
            }
            Self::Erasures { limit } => OperatorTask::ListErasures { limit },
        }
    }
}
