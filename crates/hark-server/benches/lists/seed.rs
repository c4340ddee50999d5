//! The benchmark's data set: notes with realistic names, durations, formats, statuses and
//! dates, made deterministically and written straight into the database in large batches.

use std::collections::HashMap;
use std::path::Path;

use hark_server::blob::{BlobKey, BlobStore};
use sha2::{Digest, Sha256};
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, QueryBuilder, Type};

/// Share of the notes each user owns; the bench lists as the first.
pub const SHARES: [f64; 4] = [0.5, 0.25, 0.15, 0.10];
/// 2022-01-01T00:00:00Z: the first note; the others follow over three years.
pub const START_MICROS: i64 = 1_640_995_200_000_000;
pub const SPAN_MICROS: i64 = 3 * 365 * 86_400 * 1_000_000;
/// Distinct audio contents the notes share (their bytes are really stored).
const BLOBS: usize = 256;
/// Notes per INSERT statement, and per transaction.
const ROWS_PER_STATEMENT: usize = 1_000;
const ROWS_PER_TRANSACTION: usize = 50_000;

const WORDS: [&str; 48] = [
    "standup",
    "budget",
    "review",
    "meeting",
    "idea",
    "lecture",
    "podcast",
    "draft",
    "interview",
    "groceries",
    "reminder",
    "rehearsal",
    "song",
    "lyrics",
    "guitar",
    "piano",
    "birthday",
    "kitchen",
    "garden",
    "project",
    "client",
    "weekly",
    "sync",
    "planning",
    "retro",
    "design",
    "chapter",
    "reading",
    "bedtime",
    "story",
    "walk",
    "commute",
    "travel",
    "Zürich",
    "Émile",
    "café",
    "naïve",
    "Kraków",
    "Øresund",
    "São Paulo",
    "München",
    "Malmö",
    "Québec",
    "crème",
    "brûlée",
    "Straße",
    "İstanbul",
    "Ωmega",
];
const PEOPLE: [&str; 20] = [
    "anna", "ben", "chloé", "dmitri", "eva", "farid", "greta", "hiroshi", "inès", "jonas", "kofi",
    "lena", "mateo", "nora", "oskar", "priya", "rosa", "søren", "tomás", "zoë",
];
/// Format, codec, MIME, sample rate, bitrate, and the share of notes in it.
const FORMATS: [(&str, &str, &str, i64, i64, f64); 6] = [
    ("webm", "opus", "audio/webm", 48_000, 32_000, 0.28),
    ("m4a", "aac", "audio/mp4", 44_100, 64_000, 0.24),
    ("ogg", "opus", "audio/ogg", 48_000, 24_000, 0.20),
    ("mp3", "mp3", "audio/mpeg", 44_100, 128_000, 0.16),
    ("wav", "pcm_s16le", "audio/wav", 16_000, 256_000, 0.08),
    ("flac", "flac", "audio/flac", 44_100, 400_000, 0.04),
];
const STATUSES: [(&str, f64); 4] = [
    ("ready", 0.95),
    ("failed", 0.02),
    ("processing", 0.015),
    ("pending", 0.015),
];

/// A deterministic generator (SplitMix64): every run makes the same notes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// The index of the weight `unit()` falls in.
    fn weighted(&mut self, weights: impl IntoIterator<Item = f64>) -> usize {
        let mut left = self.unit();
        let mut last = 0;
        for (i, w) in weights.into_iter().enumerate() {
            if left < w {
                return i;
            }
            left -= w;
            last = i;
        }
        last
    }
}

/// One generated note.
pub struct SeedNote {
    pub id: String,
    pub owner: usize,
    pub name: String,
    format: usize,
    pub duration: f64,
    status: &'static str,
    pub created_at: i64,
    blob: usize,
}

/// The `n`-th of `total` notes: created in order over the span, the rest at random.
fn note(n: usize, total: usize, rng: &mut Rng) -> SeedNote {
    let slot = SPAN_MICROS / total as i64;
    let created_at = START_MICROS + n as i64 * slot + rng.below(slot.max(1) as usize) as i64;
    let mut random = [0u8; 10];
    random.iter_mut().for_each(|b| *b = rng.next() as u8);
    let id = uuid::Builder::from_unix_timestamp_millis((created_at / 1000) as u64, &random)
        .into_uuid()
        .to_string();
    let format = rng.weighted(FORMATS.iter().map(|f| f.5));
    let ext = FORMATS[format].0;
    let name = match rng.weighted([0.25, 0.25, 0.30, 0.15, 0.05]) {
        0 => format!("Voice memo {}.{ext}", rng.below(9_999) + 1),
        1 => recording_name(created_at, ext),
        2 => {
            let words: Vec<&str> = (0..3).map(|_| WORDS[rng.below(WORDS.len())]).collect();
            format!("{}.{ext}", words.join(" "))
        }
        3 => format!(
            "call-with-{}-{}.{ext}",
            PEOPLE[rng.below(PEOPLE.len())],
            rng.below(99) + 1
        ),
        _ => format!("{id}.{ext}"),
    };
    // Voice notes are mostly short, with a long tail of talks and meetings.
    let duration = match rng.weighted([0.55, 0.30, 0.12, 0.03]) {
        0 => 1.0 + rng.unit() * 59.0,
        1 => 60.0 + rng.unit() * 540.0,
        2 => 600.0 + rng.unit() * 3_000.0,
        _ => 3_600.0 + rng.unit() * 3_600.0,
    };
    SeedNote {
        id,
        owner: rng.weighted(SHARES),
        name,
        format,
        duration: (duration * 1000.0).round() / 1000.0,
        status: STATUSES[rng.weighted(STATUSES.iter().map(|s| s.1))].0,
        created_at,
        blob: rng.below(BLOBS),
    }
}

fn recording_name(created_at: i64, ext: &str) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(created_at / 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "Recording {}-{:02}-{:02} {:02}{:02}{:02}.{ext}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Every note, in the order they were created.
pub fn notes(total: usize) -> Vec<SeedNote> {
    let mut rng = Rng(0x6861_726b);
    (0..total).map(|n| note(n, total, &mut rng)).collect()
}

/// Stores the shared contents' bytes, so the blob rows point at real files; their keys.
pub async fn store_blobs(store: &dyn BlobStore, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::with_capacity(BLOBS);
    for n in 0..BLOBS {
        let bytes = format!("hark bench audio {n}\n").repeat(64);
        let sha = hex::encode(Sha256::digest(bytes.as_bytes()));
        let path = dir.join(&sha);
        // `put_file` takes the source as durable, as the spool leaves it.
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, bytes.as_bytes())?;
        file.sync_all()?;
        store.put_file(&BlobKey::parse(&sha)?, &path).await?;
        std::fs::remove_file(path)?;
        keys.push(sha);
    }
    Ok(keys)
}

/// How many notes of `total` the first user received: one in a thousand.
pub fn received(total: usize) -> usize {
    total / 1_000
}

/// Writes the notes of `owners` (user ids by index), their blob rows with the right reference
/// counts, and the `received` inbox entries: notes of the second user delivered to the first.
pub async fn insert<DB>(
    pool: &Pool<DB>,
    notes: &[SeedNote],
    owners: &[String],
    blobs: &[String],
) -> anyhow::Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'a> DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    let mut refcounts: HashMap<usize, i64> = HashMap::new();
    notes
        .iter()
        .for_each(|n| *refcounts.entry(n.blob).or_default() += 1);
    let mut qb =
        QueryBuilder::<DB>::new("INSERT INTO blobs (sha256, size_bytes, refcount, created_at) ");
    qb.push_values(&refcounts, |mut row, (blob, count)| {
        row.push_bind(blobs[*blob].clone())
            .push_bind(1_472_i64)
            .push_bind(*count)
            .push_bind(START_MICROS);
    });
    qb.build().execute(pool).await?;

    for chunk in notes.chunks(ROWS_PER_TRANSACTION) {
        let mut tx = pool.begin().await?;
        for rows in chunk.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<DB>::new(
                "INSERT INTO notes (id, owner_id, name, name_folded, format, codec, mime, \
                 duration_seconds, sample_rate, channels, bitrate, size_bytes, sha256, status, \
                 tags, created_at) ",
            );
            qb.push_values(rows, |mut row, n| {
                let (format, codec, mime, rate, bitrate, _) = FORMATS[n.format];
                row.push_bind(n.id.clone())
                    .push_bind(owners[n.owner].clone())
                    .push_bind(n.name.clone())
                    .push_bind(n.name.to_lowercase())
                    .push_bind(format)
                    .push_bind(codec)
                    .push_bind(mime)
                    .push_bind(n.duration)
                    .push_bind(rate)
                    .push_bind(1_i64)
                    .push_bind(bitrate)
                    .push_bind((n.duration * bitrate as f64 / 8.0) as i64)
                    .push_bind(blobs[n.blob].clone())
                    .push_bind(n.status)
                    .push_bind("{}")
                    .push_bind(n.created_at);
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }

    let delivered: Vec<&SeedNote> = notes
        .iter()
        .filter(|n| n.owner == 1)
        .step_by(20)
        .take(received(notes.len()))
        .collect();
    for (k, rows) in delivered.chunks(ROWS_PER_STATEMENT).enumerate() {
        let mut qb = QueryBuilder::<DB>::new(
            "INSERT INTO inbox_entries (recipient_id, note_id, sender_id, channel, delivered_at) ",
        );
        qb.push_values(rows.iter().enumerate(), |mut row, (i, n)| {
            let channel = ((k + i) % 2 == 0).then(|| "team".to_owned());
            row.push_bind(owners[0].clone())
                .push_bind(n.id.clone())
                .push_bind(owners[1].clone())
                .push_bind(channel)
                .push_bind(n.created_at + 1_000_000);
        });
        qb.build().execute(pool).await?;
    }
    Ok(())
}
