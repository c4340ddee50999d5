//! The query of a note list: the viewer's own notes and the ones they received, each branch
//! walking an index in the list's order and stopping at the end of the page, then merged.
//!
//! The own branch walks the sort order's index, whose trailing columns let duration, creation,
//! status and format be checked without reading rows. A name substring uses the engine's
//! trigram index where one serves: on SQLite an FTS5 table read in creation order, or, in
//! other orders, only when it matches few notes (a common substring is found sooner by the
//! walk). A channel with few deliveries is read from them instead of checked note by note.
//! The received branch walks the viewer's inbox entries by the sort keys copied into
//! them and checks the filter columns copied there too, without reading notes.
//!
//! Branches yield sort keys and ids only (from the index they walk, where it holds the
//! columns); the notes of the merged page alone are read (`Backend::note_of`), one by one.

use hark_api::Sort;
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Type,
};

use super::{Backend, like_pattern};
use crate::db::{DbError, NoteFilter, SortKey};

/// Below this many matches in the whole name index (or entries in a channel), the own branch
/// sorts every match instead of walking the sort order (each match costs a row lookup, each
/// walked note a check).
const FEW_MATCHES: i64 = 2_000;

/// Characters in a trigram: a shorter substring has none, and no trigram index serves it.
const TRIGRAM: usize = 3;

/// A substring to find in the name index.
pub(super) struct NameSearch {
    table: &'static str,
    /// The FTS5 query: trigrams that cover the folded substring, each quoted.
    trigrams: String,
}

/// How the own branch finds its notes.
pub(super) enum OwnPlan {
    /// Walk the sort order's index, checking every filter.
    Walk,
    /// Read the name index in creation order, stopping at the end of the page.
    NamesInCreatedOrder(NameSearch),
    /// Take the name index's few matches and sort them.
    FewNameMatches(NameSearch),
    /// Take the notes delivered in the filter's channel, few of them, and sort them.
    FewInChannel(String),
}

/// Chooses the own branch's plan. A channel with few entries decides it; otherwise a name
/// search in another order than creation counts (up to `FEW_MATCHES`) its matches first.
pub(super) async fn own_plan<DB>(pool: &Pool<DB>, filter: &NoteFilter) -> Result<OwnPlan, DbError>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    if let Some(channel) = &filter.channel
        && few(pool, "inbox_entries WHERE channel = $1", channel.clone()).await?
    {
        return Ok(OwnPlan::FewInChannel(channel.clone()));
    }
    let Some(search) = name_search::<DB>(filter) else {
        return Ok(OwnPlan::Walk);
    };
    if matches!(filter.sort, Sort::CreatedAt | Sort::CreatedAtDesc) {
        return Ok(OwnPlan::NamesInCreatedOrder(search));
    }
    let table = search.table;
    let matches = format!("{table} WHERE {table} MATCH $1");
    Ok(if few(pool, &matches, search.trigrams.clone()).await? {
        OwnPlan::FewNameMatches(search)
    } else {
        OwnPlan::Walk
    })
}

/// Whether `SELECT 1 FROM {rows}`, with `value` bound to `$1`, has fewer than `FEW_MATCHES` rows.
async fn few<DB>(pool: &Pool<DB>, rows: &str, value: String) -> Result<bool, DbError>
where
    DB: Backend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM (SELECT 1 FROM {rows} LIMIT $2) AS m"
    )))
    .bind(value)
    .bind(FEW_MATCHES)
    .fetch_one(pool)
    .await?;
    Ok(count < FEW_MATCHES)
}

/// The whole list statement. Each branch yields only the sort key and id of its page; the
/// merge keeps the page of the two, and only its notes are read: the received branch needs no
/// note at all when the copies in the entries decide the filter.
pub(super) fn query<DB>(filter: &NoteFilter, plan: &OwnPlan) -> QueryBuilder<DB>
where
    DB: Backend,
    for<'a> String: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> f64: Encode<'a, DB> + Type<DB>,
{
    let mut qb = QueryBuilder::<DB>::new("SELECT n.* FROM (SELECT v.* FROM (SELECT * FROM (");
    push_owned_branch(&mut qb, filter, plan);
    qb.push(") AS owned UNION ALL SELECT * FROM (");
    push_keys(&mut qb, filter, BranchColumns::Inbox);
    qb.push(" FROM inbox_entries i");
    if filter.transcript_words.is_some() {
        // The transcript index is looked up by the note's own columns.
        qb.push(format_args!(" {}", DB::note_of("i.note_id")));
    }
    qb.push(" WHERE i.recipient_id = ");
    qb.push_bind(filter.viewer.to_string());
    push_list_conditions(&mut qb, filter, Matched::NOTHING, BranchColumns::Inbox);
    push_order(&mut qb, filter, BranchColumns::Inbox);
    qb.push(") AS received) AS v");
    push_order(&mut qb, filter, BranchColumns::Note("v"));
    qb.push(format_args!(") AS page {}", DB::note_of("page.id")));
    push_order(&mut qb, filter, BranchColumns::Note("page"));
    qb
}

/// A branch's select list: its sort key and id, named as the note's columns.
fn push_keys<DB: Database>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter, columns: BranchColumns) {
    qb.push(format_args!(
        "SELECT {} AS {}, {} AS id",
        columns.key(filter.sort),
        sort_column(filter.sort),
        columns.id()
    ));
}

/// Where a list branch reads the columns it filters and orders by: the note's own, or their
/// copies in the viewer's inbox entry (so the received branch walks an inbox index and checks
/// each entry without reading its note).
#[derive(Clone, Copy)]
enum BranchColumns {
    Note(&'static str),
    Inbox,
}

impl BranchColumns {
    /// The note's `column`, or its copy.
    fn column(self, column: &str) -> String {
        match (self, column) {
            (BranchColumns::Note(alias), _) => format!("{alias}.{column}"),
            (BranchColumns::Inbox, "id") => "i.note_id".to_owned(),
            // A delivery's sender is the note's owner.
            (BranchColumns::Inbox, "owner_id") => "i.sender_id".to_owned(),
            (BranchColumns::Inbox, _) => format!("i.note_{column}"),
        }
    }

    fn key(self, sort: Sort) -> String {
        self.column(sort_column(sort))
    }

    fn id(self) -> String {
        self.column("id")
    }
}

/// The filters a branch's rows already pass, by the way it finds them.
#[derive(Clone, Copy)]
struct Matched {
    channel: bool,
}

impl Matched {
    const NOTHING: Matched = Matched { channel: false };
}

/// Appends the conditions every list branch shares: filters (but those in `matched`) and the
/// cursor.
fn push_list_conditions<DB>(
    qb: &mut QueryBuilder<DB>,
    filter: &NoteFilter,
    matched: Matched,
    columns: BranchColumns,
) where
    DB: Backend,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    let off_index = |column: &str| {
        if DB::STEER_TO_SORT_ORDER && sort_column(filter.sort) != column {
            "+"
        } else {
            ""
        }
    };
    let column = |name: &str| columns.column(name);
    let duration = off_index("duration_seconds");
    let duration_seconds = column("duration_seconds");
    if let Some(max) = filter.max_duration {
        qb.push(format_args!(" AND {duration}{duration_seconds} <= "))
            .push_bind(max);
    }
    if let Some(min) = filter.min_duration {
        qb.push(format_args!(" AND {duration}{duration_seconds} >= "))
            .push_bind(min);
    }
    if let Some(name) = &filter.name_contains {
        let name_folded = column("name_folded");
        match DB::POSITION_OF.filter(|_| name.chars().count() < TRIGRAM) {
            Some(position_of) => qb
                .push(format_args!(" AND {position_of}({name_folded}, "))
                .push_bind(name.to_lowercase())
                .push(") > 0"),
            None => qb
                .push(format_args!(" AND {name_folded} LIKE "))
                .push_bind(like_pattern(name))
                .push(" ESCAPE '\\'"),
        };
    }
    if let Some(sender) = filter.sender {
        qb.push(format_args!(" AND {} = ", column("owner_id")))
            .push_bind(sender.to_string());
    }
    if let Some(channel) = filter.channel.as_ref().filter(|_| !matched.channel) {
        qb.push(format_args!(
            " AND EXISTS (SELECT 1 FROM inbox_entries c WHERE c.note_id = {} AND c.channel = ",
            columns.id()
        ))
        .push_bind(channel.clone())
        .push(")");
    }
    if let Some(status) = filter.status {
        qb.push(format_args!(" AND {} = ", column("status")))
            .push_bind(status.as_str().to_owned());
    }
    if let Some(format) = &filter.format {
        qb.push(format_args!(" AND {} = ", column("format")))
            .push_bind(format.clone());
    }
    match filter.transcript_words.as_deref() {
        None => {}
        Some([]) => {
            qb.push(" AND 1 = 0");
        }
        Some(words) => {
            let (before, after) = DB::TRANSCRIPT_MATCH;
            qb.push(" AND ")
                .push(before)
                .push_bind(DB::transcript_search(words))
                .push(after);
        }
    }
    let created = off_index("created_at");
    let created_at = column("created_at");
    if let Some(after) = filter.created_after {
        qb.push(format_args!(" AND {created}{created_at} > "))
            .push_bind(after.micros());
    }
    if let Some(before) = filter.created_before {
        qb.push(format_args!(" AND {created}{created_at} < "))
            .push_bind(before.micros());
    }
    if let Some((key, id)) = &filter.after {
        let op = if descending(filter.sort) { "<" } else { ">" };
        qb.push(format_args!(
            " AND ({}, {}) {op} (",
            columns.key(filter.sort),
            columns.id()
        ));
        match key {
            SortKey::Created(v) => qb.push_bind(*v),
            SortKey::Duration(v) => qb.push_bind(*v),
            SortKey::Name(v) => qb.push_bind(v.clone()),
        };
        qb.push(", ").push_bind(id.to_string()).push(")");
    }
}

fn push_order<DB>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter, columns: BranchColumns)
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    let dir = if descending(filter.sort) {
        "DESC"
    } else {
        "ASC"
    };
    qb.push(format_args!(
        " ORDER BY {key} {dir}, {id} {dir} LIMIT ",
        key = columns.key(filter.sort),
        id = columns.id()
    ))
    .push_bind(i64::from(filter.limit));
}

const NOTE: BranchColumns = BranchColumns::Note("n");

/// The viewer's own notes that pass the filter, in its order, at most a page of them.
fn push_owned_branch<DB>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter, plan: &OwnPlan)
where
    DB: Backend,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    match plan {
        OwnPlan::Walk => {
            push_keys(qb, filter, NOTE);
            qb.push(" FROM notes n WHERE n.owner_id = ")
                .push_bind(filter.viewer.to_string());
            push_other_sender(qb, filter);
            push_list_conditions(qb, filter, Matched::NOTHING, NOTE);
        }
        OwnPlan::FewInChannel(channel) => {
            // The viewer's own notes in the channel are those they sent to it: a delivery's
            // sender is the note's owner, so no other sender's note is looked up.
            push_keys(qb, filter, NOTE);
            qb.push(
                " FROM (SELECT DISTINCT c.note_id FROM inbox_entries c \
                 WHERE c.channel = ",
            )
            .push_bind(channel.clone())
            .push(" AND c.sender_id = ")
            .push_bind(filter.viewer.to_string())
            .push(") AS c CROSS JOIN notes n WHERE n.id = c.note_id AND n.owner_id = ")
            .push_bind(filter.viewer.to_string());
            push_other_sender(qb, filter);
            let matched = Matched { channel: true };
            push_list_conditions(qb, filter, matched, NOTE);
        }
        OwnPlan::FewNameMatches(search) => {
            push_keys(qb, filter, NOTE);
            qb.push(" FROM ");
            push_name_matches(qb, filter, search);
        }
        OwnPlan::NamesInCreatedOrder(search) => {
            // The index yields matches in `name_key` order, which is `created_at` order, so
            // the inner query finds the page's last match after reading about a page of them.
            // The page is every match up to that one's microsecond (ties are ordered by id,
            // which the key is not).
            let (dir, bound, edge, extreme) = if descending(filter.sort) {
                ("DESC", ">=", "", i64::MIN)
            } else {
                ("ASC", "<=", " + 1023", i64::MAX)
            };
            push_keys(qb, filter, NOTE);
            qb.push(" FROM ");
            push_name_matches(qb, filter, search);
            qb.push(format_args!(
                " AND f.rowid {bound} coalesce((SELECT f.rowid / 1024 * 1024{edge} FROM "
            ));
            push_name_matches(qb, filter, search);
            qb.push(format_args!(" ORDER BY f.rowid {dir} LIMIT 1 OFFSET "))
                .push_bind(i64::from(filter.limit) - 1)
                .push("), ")
                .push_bind(extreme)
                .push(")");
        }
    }
    push_order(qb, filter, NOTE);
}

/// Another sender's notes are only ever received: no need to look at the viewer's own.
fn push_other_sender<DB: Database>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter) {
    if filter.sender.is_some_and(|sender| sender != filter.viewer) {
        qb.push(" AND 1 = 0");
    }
}

/// The name index joined to the viewer's notes, with every condition of the filter. The
/// index is read first (`CROSS JOIN` fixes the order); bounds on its rowid let it skip what
/// the cursor and the creation range leave out.
fn push_name_matches<DB>(qb: &mut QueryBuilder<DB>, filter: &NoteFilter, search: &NameSearch)
where
    DB: Backend,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
{
    let table = search.table;
    qb.push(format_args!(
        "{table} f CROSS JOIN notes n ON n.name_key = f.rowid WHERE f.{table} MATCH "
    ))
    .push_bind(search.trigrams.clone())
    .push(" AND n.owner_id = ")
    .push_bind(filter.viewer.to_string());
    let (from, until) = name_key_range(filter);
    if let Some(from) = from {
        qb.push(" AND f.rowid >= ").push_bind(from);
    }
    if let Some(until) = until {
        qb.push(" AND f.rowid < ").push_bind(until);
    }
    // The index finds the names with the substring's trigrams; the conditions check it.
    push_list_conditions(qb, filter, Matched::NOTHING, NOTE);
}

/// The name index and what to look up in it, when the engine has the index and the substring
/// is long enough to have trigrams.
fn name_search<DB: Backend>(filter: &NoteFilter) -> Option<NameSearch> {
    let table = DB::NAME_TRIGRAMS?;
    let folded: Vec<char> = filter
        .name_contains
        .as_ref()?
        .to_lowercase()
        .chars()
        .collect();
    (folded.len() >= TRIGRAM).then(|| NameSearch {
        table,
        trigrams: covering_trigrams(&folded),
    })
}

/// An FTS5 query for the names that hold each trigram of a chain covering `folded` end to end
/// (side by side, the last overlapping its neighbour to reach the end). Every name with the
/// substring holds them, so none is missed; the substring itself is checked on each note found.
/// A phrase of all its trigrams would read every one's list, and a long substring has common
/// ones (`call-with-` in a library of calls): a third of them costs about a third.
fn covering_trigrams(folded: &[char]) -> String {
    let last = folded.len() - TRIGRAM;
    let starts = (0..last).step_by(TRIGRAM).chain([last]);
    let quoted: Vec<String> = starts
        .map(|start| {
            let trigram: String = folded[start..start + TRIGRAM].iter().collect();
            format!("\"{}\"", trigram.replace('"', "\"\""))
        })
        .collect();
    quoted.join(" ")
}

/// The `name_key` range (`from <= key < until`) that the creation filters and the cursor leave:
/// a key is `created_at * 1024` plus a rank within the microsecond.
fn name_key_range(filter: &NoteFilter) -> (Option<i64>, Option<i64>) {
    let key = |micros: i64| micros.saturating_mul(1024);
    let mut from = filter
        .created_after
        .map(|t| key(t.micros().saturating_add(1)));
    let mut until = filter.created_before.map(|t| key(t.micros()));
    if let Some((SortKey::Created(at), _)) = &filter.after {
        if descending(filter.sort) {
            let cursor = key(at.saturating_add(1));
            until = Some(until.map_or(cursor, |u| u.min(cursor)));
        } else {
            let cursor = key(*at);
            from = Some(from.map_or(cursor, |f| f.max(cursor)));
        }
    }
    (from, until)
}

fn sort_column(sort: Sort) -> &'static str {
    match sort {
        Sort::CreatedAt | Sort::CreatedAtDesc => "created_at",
        Sort::Duration | Sort::DurationDesc => "duration_seconds",
        Sort::Name | Sort::NameDesc => "name",
    }
}

fn descending(sort: Sort) -> bool {
    matches!(
        sort,
        Sort::CreatedAtDesc | Sort::DurationDesc | Sort::NameDesc
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigrams(substring: &str) -> String {
        covering_trigrams(&substring.chars().collect::<Vec<_>>())
    }

    #[test]
    fn a_chain_of_trigrams_covers_the_substring_end_to_end() {
        assert_eq!(trigrams("abc"), r#""abc""#);
        assert_eq!(trigrams("abcd"), r#""abc" "bcd""#);
        assert_eq!(trigrams("abcdef"), r#""abc" "def""#);
        assert_eq!(
            trigrams("call-with-søren"),
            r#""cal" "l-w" "ith" "-sø" "ren""#
        );
        assert_eq!(trigrams("a\"b\"cd"), r#""a""b" """cd""#);
    }
}
