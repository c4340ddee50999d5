//! `hark`: the server, its administration, and a client for it.

mod commands;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hark",
    version,
    about = "A self-hosted voice-note and audio server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server's configuration comes from (for the commands that run server-side).
/// Global, so they are accepted after a subcommand too: `hark user add EMAIL --data-dir D`
/// as well as `hark user --data-dir D add EMAIL`.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Server options")]
pub struct ServerArgs {
    /// A TOML configuration file.
    #[arg(long, env = "HARK_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8000.
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Directory for the database, blobs and secrets.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    database_url: Option<String>,
}

/// Which server the client commands talk to.
#[derive(clap::Args, Clone)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(long, env = "HARK_SERVER", default_value = "http://127.0.0.1:8000")]
    server: String,
    /// A token from `hark login` or POST /token, or a personal API key.
    #[arg(long, env = "HARK_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, web UI and background work.
    Serve(ServerArgs),
    /// Process uploads only (no API), on any machine that reaches the database and the store.
    Worker(ServerArgs),
    /// Deliver webhooks and push messages only (no API), for the events the broker carries, on
    /// any machine that reaches the database and the broker.
    Notifier(ServerArgs),
    /// Apply database migrations and exit.
    Migrate(ServerArgs),
    /// Manage users.
    User {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: commands::user::UserCommand,
    },
    /// Manage the speech model.
    Model {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: commands::model::ModelCommand,
    },
    /// Print the default configuration, every key commented.
    Config,
    /// Hash a service client's secret for `[[auth.service_clients]] secret_hash`.
    HashSecret {
        /// The secret; read from standard input when omitted.
        secret: Option<String>,
    },
    /// Sign in and print a token (for HARK_TOKEN).
    Login {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        email: String,
        /// Read from standard input when omitted.
        #[arg(long)]
        password: Option<String>,
    },
    /// Upload audio files, with a progress bar.
    Upload {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        options: commands::client::UploadArgs,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List notes, as JSON lines or a table.
    List {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        filters: commands::client::ListArgs,
    },
    /// The notes you received, newest last; `--follow` prints new ones as they arrive.
    Inbox {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        options: commands::client::InboxArgs,
    },
    /// Download a note's audio.
    Download {
        #[command(flatten)]
        client: ClientArgs,
        /// The note's id.
        id: String,
        /// Where to write; default: the note's name in the current directory.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Worker(args) => commands::serve::worker(args).await,
        Command::Notifier(args) => commands::serve::notifier(args).await,
        Command::Migrate(args) => commands::serve::migrate(args).await,
        Command::User { server, command } => commands::user::run(server, command).await,
        Command::Model { server, command } => commands::model::run(server, command),
        Command::Config => {
            print!("{}", hark_server::config::DEFAULT_CONFIG);
            Ok(())
        }
        Command::HashSecret { secret } => commands::user::hash_secret(secret),
        Command::Login {
            client,
            email,
            password,
        } => commands::client::login(client, &email, password).await,
        Command::Upload {
            client,
            options,
            files,
        } => commands::client::upload(client, options, files).await,
        Command::List { client, filters } => commands::client::list(client, filters).await,
        Command::Inbox { client, options } => commands::client::inbox(client, options).await,
        Command::Download { client, id, output } => {
            commands::client::download(client, &id, output).await
        }
    }
}
