//! The client commands: `hark login`, `upload`, `list`, `download`, `inbox`.

use std::path::PathBuf;

use anyhow::Context;
use hark_api::{AudioFormat, InboxItem, InboxQuery, ListNotesQuery, NoteStatus, Sort};
use hark_client::{Client, UploadOptions};
use indicatif::{ProgressBar, ProgressStyle};

use super::secret_or_stdin;
use crate::ClientArgs;

#[derive(clap::Args)]
pub struct UploadArgs {
    /// The note's name (default: the file's name). Only with a single file.
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    series: Option<String>,
    /// Deliver to these users (emails or ids; repeat the flag or separate with commas).
    #[arg(long, value_delimiter = ',')]
    to: Vec<String>,
    /// Deliver to a channel the caller created or belongs to.
    #[arg(long)]
    channel: Option<String>,
}

#[derive(clap::Args)]
pub struct InboxArgs {
    /// Keep waiting and print notes as they arrive, until interrupted.
    #[arg(long)]
    follow: bool,
    /// Only notes not listened to yet.
    #[arg(long)]
    unlistened: bool,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// At most this many seconds long.
    #[arg(long)]
    max_duration: Option<f64>,
    /// At least this many seconds long.
    #[arg(long)]
    min_duration: Option<f64>,
    /// Name contains.
    #[arg(long)]
    name: Option<String>,
    /// pending, processing, ready or failed.
    #[arg(long)]
    status: Option<NoteStatus>,
    /// wav, mp3, ogg, flac, m4a or webm.
    #[arg(long)]
    format: Option<AudioFormat>,
    /// created_at, -created_at, duration, -duration, name, -name.
    #[arg(long, allow_hyphen_values = true)]
    sort: Option<Sort>,
    /// How many notes at most (all pages are followed).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

fn client(args: &ClientArgs) -> Client {
    let client = Client::new(&args.server);
    match &args.token {
        Some(token) => client.with_token(token),
        None => client,
    }
}

pub async fn login(args: ClientArgs, email: &str, password: Option<String>) -> anyhow::Result<()> {
    let password = secret_or_stdin(password, "password")?;
    let token = client(&args).sign_in(email, &password).await?;
    println!("{}", token.access_token);
    Ok(())
}

pub async fn upload(
    args: ClientArgs,
    options: UploadArgs,
    files: Vec<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.name.is_none() || files.len() == 1,
        "--name applies to a single file"
    );
    let client = client(&args);
    let style =
        ProgressStyle::with_template("{msg:30!} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut failed = 0;
    for file in files {
        let size = std::fs::metadata(&file)
            .with_context(|| format!("reading {}", file.display()))?
            .len();
        let bar = ProgressBar::new(size)
            .with_style(style.clone())
            .with_message(file.display().to_string());
        let upload = UploadOptions {
            name: options.name.clone(),
            title: options.title.clone(),
            series: options.series.clone(),
            to: options.to.clone(),
            channel: options.channel.clone(),
        };
        let progress = bar.clone();
        match client
            .upload_file(&file, &upload, move |sent| progress.set_position(sent))
            .await
        {
            Ok(note) => {
                bar.finish_and_clear();
                println!(
                    "{}\t{}\t{:.2}s\t{}",
                    note.id, note.name, note.duration_seconds, note.format
                );
            }
            Err(e) => {
                bar.abandon();
                eprintln!("{}: {e}", file.display());
                failed += 1;
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} upload(s) failed");
    Ok(())
}

pub async fn list(args: ClientArgs, filters: ListArgs) -> anyhow::Result<()> {
    let client = client(&args);
    let mut query = ListNotesQuery {
        max_duration: filters.max_duration,
        min_duration: filters.min_duration,
        name: filters.name,
        status: filters.status,
        format: filters.format,
        sort: filters.sort,
        limit: Some(filters.limit.clamp(1, 500) as u32),
        ..Default::default()
    };
    let mut shown = 0;
    loop {
        let page = client.list_notes(&query).await?;
        for note in &page.items {
            if shown == filters.limit {
                return Ok(());
            }
            if filters.json {
                println!("{}", serde_json::to_string(note)?);
            } else {
                println!(
                    "{}\t{}\t{:.2}s\t{}\t{}",
                    note.id, note.name, note.duration_seconds, note.format, note.created_at
                );
            }
            shown += 1;
        }
        match page.next_cursor {
            Some(cursor) if shown < filters.limit => query.cursor = Some(cursor),
            _ => return Ok(()),
        }
    }
}

pub async fn download(args: ClientArgs, id: &str, output: Option<PathBuf>) -> anyhow::Result<()> {
    let client = client(&args);
    let target = match output {
        Some(path) => path,
        None => PathBuf::from(client.note(id).await?.name),
    };
    let written = client.download_to(id, &target).await?;
    eprintln!("wrote {written} bytes to {}", target.display());
    Ok(())
}

/// Prints the inbox, oldest of the page first; with `--follow`, long-polls for more.
pub async fn inbox(args: ClientArgs, options: InboxArgs) -> anyhow::Result<()> {
    let client = client(&args);
    let mut query = InboxQuery {
        unlistened: options.unlistened.then_some(true),
        ..Default::default()
    };
    loop {
        let page = client.inbox(&query).await?;
        for item in page.items.iter().rev() {
            print_received(item, options.json)?;
        }
        if !options.follow {
            return Ok(());
        }
        query.since = Some(page.cursor);
        query.wait = Some(hark_api::MAX_INBOX_WAIT_SECONDS);
    }
}

fn print_received(item: &InboxItem, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(item)?);
    } else {
        println!(
            "{}\t{}\t{:.2}s\tfrom {}\t{}",
            item.note.id,
            item.note.title.as_deref().unwrap_or(&item.note.name),
            item.note.duration_seconds,
            item.sender.email,
            item.delivered_at
        );
    }
    Ok(())
}
