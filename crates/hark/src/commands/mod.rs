//! One file per command group.

pub mod client;
pub mod model;
pub mod serve;
pub mod user;

use std::io::BufRead;

use hark_server::{Config, Overrides};

use crate::ServerArgs;

/// The server configuration for these arguments.
pub fn load_config(args: ServerArgs) -> anyhow::Result<Config> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
    };
    Ok(Config::load(args.config.as_deref(), overrides)?)
}

/// A secret given as an argument, or else the first line of standard input.
pub fn secret_or_stdin(given: Option<String>, what: &str) -> anyhow::Result<String> {
    if let Some(given) = given {
        return Ok(given);
    }
    eprintln!("{what}:");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!line.is_empty(), "no {what} given");
    Ok(line)
}
