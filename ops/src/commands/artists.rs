use clap::Subcommand;
use shared::ops::Task;

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
    /// The newest artists, with their emails and live token counts.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

impl Artists {
    pub fn task(self) -> Task {
        match self {
            Self::Create { name, email, bio, website } => Task::CreateArtist { name, email, bio, website },
            Self::List { limit } => Task::ListArtists { limit },
        }
    }
}
