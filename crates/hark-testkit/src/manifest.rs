//! The corpus's two tables: `manifest.tsv` (ffprobe's view of every good file) and `texts.tsv`.

use std::path::PathBuf;

/// One good file as ffprobe sees it (a row of `manifest.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// File name inside the corpus directory.
    pub file: String,
    /// ffprobe's `format_name`, e.g. `ogg` or `mov,mp4,m4a,3gp,3g2,mj2`.
    pub format_name: String,
    /// ffprobe's `codec_name`.
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// ffprobe's container duration (see the generator for the refinements).
    pub duration_seconds: f64,
    /// The sentence spoken (an id in `texts.tsv`), or `long` for all of them.
    pub text_id: String,
    /// What ffmpeg decodes, with the encoder delay and padding the file declares removed.
    pub decoded_seconds: f64,
}

impl Entry {
    /// Where the file is.
    pub fn path(&self) -> PathBuf {
        crate::corpus_file(&self.file)
    }

    /// The file's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        let path = self.path();
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }
}

/// One sentence of `texts.tsv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub id: String,
    pub text: String,
}

const COLUMNS: [&str; 8] = [
    "file",
    "format_name",
    "codec",
    "sample_rate",
    "channels",
    "duration_seconds",
    "text_id",
    "decoded_seconds",
];

/// Parses `manifest.tsv`: a header naming the columns, then one tab-separated row per file.
/// Columns are found by name, so the generator may add more.
pub fn parse_manifest(text: &str) -> Result<Vec<Entry>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or("no header")?.split('\t').collect();
    let mut at = [0usize; COLUMNS.len()];
    for (slot, name) in at.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("no column {name:?} in the header"))?;
    }
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let get = |i: usize| {
                fields
                    .get(at[i])
                    .copied()
                    .ok_or_else(|| format!("no {} in {line:?}", COLUMNS[i]))
            };
            let num = |i: usize| {
                let field = get(i)?;
                field
                    .parse::<f64>()
                    .map_err(|e| format!("{} {field:?} in {line:?}: {e}", COLUMNS[i]))
            };
            Ok(Entry {
                file: get(0)?.to_owned(),
                format_name: get(1)?.to_owned(),
                codec: get(2)?.to_owned(),
                sample_rate: num(3)? as u32,
                channels: num(4)? as u16,
                duration_seconds: num(5)?,
                text_id: get(6)?.to_owned(),
                decoded_seconds: num(7)?,
            })
        })
        .collect()
}

/// Parses `texts.tsv`: `id<TAB>sentence` per line, no header.
pub fn parse_texts(text: &str) -> Result<Vec<Text>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (id, text) = line
                .split_once('\t')
                .ok_or_else(|| format!("no tab in {line:?}"))?;
            Ok(Text {
                id: id.to_owned(),
                text: text.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "file\tformat_name\tcodec\tsample_rate\tchannels\tduration_seconds\ttext_id\tdecoded_seconds\n\
        t2_opus24.ogg\togg\topus\t48000\t1\t4.526063\tt2\t4.519563\n\
        t1_pcm16_16k.wav\twav\tpcm_s16le\t16000\t1\t4.875125\tt1\t4.875125\n";

    #[test]
    fn manifest_rows_become_entries() {
        let entries = parse_manifest(MANIFEST).expect("parse");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            Entry {
                file: "t2_opus24.ogg".into(),
                format_name: "ogg".into(),
                codec: "opus".into(),
                sample_rate: 48000,
                channels: 1,
                duration_seconds: 4.526063,
                text_id: "t2".into(),
                decoded_seconds: 4.519563,
            }
        );
        assert_eq!(entries[1].codec, "pcm_s16le");
    }

    #[test]
    fn columns_are_found_by_name() {
        let reordered = "codec\tfile\textra\tformat_name\tsample_rate\tchannels\tduration_seconds\ttext_id\tdecoded_seconds\n\
            flac\tt4.flac\tx\tflac\t44100\t1\t4.5961\tt4\t4.5961\n";
        let entries = parse_manifest(reordered).expect("parse");
        assert_eq!(
            (entries[0].file.as_str(), entries[0].codec.as_str()),
            ("t4.flac", "flac")
        );
    }

    #[test]
    fn a_damaged_manifest_is_an_error_naming_the_problem() {
        let no_column = "file\tcodec\n";
        assert!(parse_manifest(no_column).is_err_and(|e| e.contains("format_name")));
        let short = MANIFEST.replace("\t4.519563", "");
        assert!(parse_manifest(&short).is_err_and(|e| e.contains("decoded_seconds")));
        let bad_number = MANIFEST.replace("48000", "48k");
        assert!(parse_manifest(&bad_number).is_err_and(|e| e.contains("sample_rate")));
        assert!(parse_manifest("").is_err());
    }

    #[test]
    fn texts_are_id_and_sentence() {
        let texts =
            parse_texts("t1\tHello, this is your driver.\nt2\tPlease leave it.\n").expect("parse");
        assert_eq!(
            texts[1],
            Text {
                id: "t2".into(),
                text: "Please leave it.".into()
            }
        );
        assert!(parse_texts("no tab here").is_err());
    }
}
