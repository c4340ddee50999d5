//! `hark user add|list|passwd|role|delete`: administration straight against the database.

use clap::Subcommand;
use hark_api::Role;
use hark_server::auth::AuthService;
use hark_server::db::Repos;
use hark_server::domain::{Email, User};
use secrecy::ExposeSecret;

use super::{load_config, secret_or_stdin};
use crate::ServerArgs;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user.
    Add {
        email: String,
        /// Read from standard input when omitted.
        #[arg(long)]
        password: Option<String>,
        #[arg(long, value_parser = ["user", "admin"], default_value = "user")]
        role: String,
    },
    /// List users.
    List,
    /// Set a user's password.
    Passwd {
        email: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Set a user's role.
    Role {
        email: String,
        #[arg(value_parser = ["user", "admin"])]
        role: String,
    },
    /// Delete a user and all their notes.
    Delete { email: String },
}

pub async fn run(args: ServerArgs, command: UserCommand) -> anyhow::Result<()> {
    let config = load_config(args)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let url = config.database_url.expose_secret();
    let repos = hark_server::db::connect(url, true).await?;
    // Only password hashing is used here; token keys may not be empty, so any key will do
    // (the server's own secret file is left for the server to make).
    let auth = AuthService::new(repos.clone(), config.auth.clone(), &[1u8; 32])?;
    match command {
        UserCommand::Add {
            email,
            password,
            role,
        } => {
            let password = secret_or_stdin(password, "password")?;
            let role = Role::parse(&role).unwrap_or(Role::User);
            let user = auth.register(&email, &password, role).await?;
            println!(
                "added {} ({}, {})",
                user.email.as_str(),
                user.id,
                user.role.as_str()
            );
        }
        UserCommand::List => {
            for user in repos.users.list_users().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    user.id,
                    user.email.as_str(),
                    user.role.as_str(),
                    user.created_at.to_rfc3339()
                );
            }
        }
        UserCommand::Passwd { email, password } => {
            let user = find(&repos, &email).await?;
            let password = secret_or_stdin(password, "new password")?;
            auth.set_password(user.id, &password).await?;
            println!("password changed for {}", user.email.as_str());
        }
        UserCommand::Role { email, role } => {
            let user = find(&repos, &email).await?;
            repos
                .users
                .set_role(user.id, Role::parse(&role).unwrap_or(Role::User))
                .await?;
            println!("{} is now {role}", user.email.as_str());
        }
        UserCommand::Delete { email } => {
            let user = find(&repos, &email).await?;
            hark_server::notes::delete_user(&repos, user.id).await?;
            // A server on this data directory keeps notes in memory: it must forget them.
            if hark_server::db::exclusive(url, &config.data_dir) {
                hark_server::db::announce_change(&config.data_dir)?;
            }
            println!("deleted {} and their notes", user.email.as_str());
        }
    }
    Ok(())
}

async fn find(repos: &Repos, email: &str) -> anyhow::Result<User> {
    let email = Email::parse(email).map_err(anyhow::Error::msg)?;
    repos
        .users
        .user_by_email(email.as_str())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user {}", email.as_str()))
}

pub fn hash_secret(secret: Option<String>) -> anyhow::Result<()> {
    let secret = secret_or_stdin(secret, "secret")?;
    println!("{}", hark_server::auth::hash_secret(&secret)?);
    Ok(())
}
