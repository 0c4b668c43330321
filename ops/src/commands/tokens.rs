use clap::{Subcommand, ValueEnum};
use shared::domain::Scope;
use shared::operator::OperatorTask;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    Artist,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum Tokens {
    /// Creates a token and prints its secret once.
    Create {
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// The artist an artist token acts for.
        #[arg(long)]
        artist: Option<Uuid>,
        #[arg(long)]
        label: String,
        #[arg(long, default_value_t = 90)]
        expires_in_days: u32,
    },
    /// Lists live tokens (never their secrets).
    List {
        /// Include expired and revoked tokens.
        #[arg(long)]
        all: bool,
    },
    /// Revokes a token; effective on its next request.
    Revoke {
        token_id: Uuid,
        /// Why; kept in the audit log.
        #[arg(long)]
        reason: String,
    },
}

impl Tokens {
    pub fn task(self) -> OperatorTask {
        match self {
            Self::Create { scope, artist, label, expires_in_days } => OperatorTask::CreateToken {
                scope: match scope {
                    ScopeArg::Artist => Scope::Artist,
                    ScopeArg::Admin => Scope::Admin,
                },
                artist_id: artist,
                label,
                expires_in_days,
            },
            Self::List { all } => OperatorTask::ListTokens { include_dead: all },
            Self::Revoke { token_id, reason } => OperatorTask::RevokeToken { token_id, reason },
        }
    }
}
