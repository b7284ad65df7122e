//! Lists of applications read from indexes, a page at a time: the
//! workstation's `ListApplications` and the ARM's `ListRegistrations`.
//!
//! Every write of an application keeps, in the same commit, index entries
//! (`Outcome::index`) under the participant's list prefix (`list/` at the
//! workstation, `list/CHANNEL/` at the ARM), one per order and filter, each
//! ending in the application's id. An entry's key sorts as its order does:
//! times are zero-padded milliseconds, names and words lower-case.
//!
//! ```text
//! started/MS/APP            due/MS/APP             applicant/NAME/MS/APP
//! state/STATE/MS/APP        phase/open|ended/MS/APP
//! actor/ROLE/MS/APP         operator/OPERATOR/MS/APP
//! iin/IIN/MS/APP            name/WORD/MS/APP (each word of the name)
//! id/APP
//! ```
//!
//! (`MS` is when the application started: its first step after the
//! operator's log-in; `STATE` its current step, or its outcome once ended.)
//! A page picks the one index that gives its order and narrows it most (a
//! search by IIN or name word, a filter on the outcome, step, actor, operator
//! or state for the order by start, else the order's own index), reads a
//! bounded range of it after the cursor ([`Store::index_page`]), loads each
//! application and keeps those every filter accepts, until the page is full
//! or [`MAX_EXAMINED`] entries were read. An entry whose application no
//! longer makes it (written before a later change) is passed over, so a list
//! never shows a stale row or one twice.

use std::collections::BTreeSet;

use egov_proto::{Application, ApplicationListQuery};
use egov_regulation::{Definition, Effect};
use egov_store::Store;
use tonic::Code;

use crate::Refusal;

/// Rows of a page when the query does not say; the most it may ask.
pub const DEFAULT_PAGE: usize = 50;
pub const MAX_PAGE: usize = 1000;
/// Index entries one page reads at most, matching or not: a page whose
/// filters match few of its index's entries comes back short, with a cursor.
pub const MAX_EXAMINED: usize = 5000;

/// When the application started: its first step other than the operator's
/// log-in (process 1 starts at the log-in, which may be long before the
/// applicant comes), or its current step's start.
pub fn started(definition: &Definition, application: &Application) -> i64 {
    let log_in = definition.step_by_effect(Effect::LogIn).map(|step| step.id.as_str());
    application
        .path
        .iter()
        .find(|step| Some(step.step_id.as_str()) != log_in)
        .map_or(application.current_step_since_ms, |step| step.started_time_ms)
}

/// A time in a key: 16 digits, so that key order is time order.
fn ms(at: i64) -> String {
    format!("{:016}", at.max(0))
}

/// The words of a name as its index holds them: lower-case, split on spaces, hyphens and slashes.
pub fn words(name: &str) -> Vec<String> {
    name.to_lowercase()
        .split(|c: char| c.is_whitespace() || c == '-' || c == '/')
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The application's state in the list: its outcome once ended, else the step it waits on.
fn state(application: &Application) -> &str {
    if application.outcome.is_empty() { &application.current_step } else { &application.outcome }
}

/// The role the application's current step waits on; empty once ended.
fn waits_on<'d>(definition: &'d Definition, application: &Application) -> &'d str {
    if !application.outcome.is_empty() {
        return "";
    }
    definition.step(&application.current_step).map_or("", |step| step.actor.as_str())
}

/// Every list entry of `application` (without the participant's prefix).
pub fn entries(definition: &Definition, application: &Application) -> BTreeSet<String> {
    let id = &application.application_id;
    let at = ms(started(definition, application));
    let mut entries = BTreeSet::new();
    entries.insert(format!("started/{at}/{id}"));
    entries.insert(format!("id/{id}"));
    entries.insert(format!("due/{}/{id}", ms(application.due_time_ms)));
    entries.insert(format!("applicant/{}/{at}/{id}", application.applicant_name.to_lowercase().replace('/', " ")));
    let state = state(application);
    if !state.is_empty() {
        entries.insert(format!("state/{state}/{at}/{id}"));
    }
    let phase = if application.outcome.is_empty() { "open" } else { "ended" };
    entries.insert(format!("phase/{phase}/{at}/{id}"));
    let actor = waits_on(definition, application);
    if !actor.is_empty() {
        entries.insert(format!("actor/{actor}/{at}/{id}"));
    }
    if !application.operator_id.is_empty() {
        entries.insert(format!("operator/{}/{at}/{id}", application.operator_id));
    }
    if !application.applicant_iin.is_empty() {
        entries.insert(format!("iin/{}/{at}/{id}", application.applicant_iin));
    }
    for word in words(&application.applicant_name) {
        entries.insert(format!("name/{word}/{at}/{id}"));
    }
    entries
}

/// The index writes that move `after` from the entries of `before` (none:
/// a new application) to its own: `(key, present)`, for `Outcome::index` or
/// `Batch::index` in the commit that writes the application.
pub fn reindex(
    prefix: &str,
    definition: &Definition,
    before: Option<&Application>,
    after: &Application,
) -> Vec<(String, bool)> {
    let old = before.map(|before| entries(definition, before)).unwrap_or_default();
    let new = entries(definition, after);
    let mut writes: Vec<(String, bool)> =
        old.difference(&new).map(|entry| (format!("{prefix}{entry}"), false)).collect();
    writes.extend(new.difference(&old).map(|entry| (format!("{prefix}{entry}"), true)));
    writes
}

/// One page: the applications in the order read, each with its key (the
/// entry under the chosen index, after the prefix), and where the next
/// page in that direction starts (empty: nothing follows).
#[derive(Debug, Default)]
pub struct Page {
    pub applications: Vec<Application>,
    pub keys: Vec<String>,
    pub next_cursor: String,
}

fn bad(message: impl std::fmt::Display) -> Refusal {
    Refusal::new(Code::InvalidArgument, "request.bad_list_query", message)
}

/// The index a page reads (after the prefix), whether its keys continue with
/// the start time (so a date range bounds the range read), and the name word
/// a name search matched on.
struct Plan {
    index: String,
    timed: bool,
    word: Option<String>,
}

fn plan(query: &ApplicationListQuery, by_id: bool) -> Result<Option<Plan>, Refusal> {
    let text = query.text.trim();
    if by_id {
        return Ok(Some(Plan { index: format!("id/{text}"), timed: false, word: None }));
    }
    if !text.is_empty() {
        if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Some(Plan { index: format!("iin/{text}/"), timed: true, word: None }));
        }
        // The longest word narrows most; it matches the words of names that start with it.
        let words = words(text);
        let Some(word) = words.iter().max_by_key(|word| word.chars().count()) else { return Ok(None) };
        return Ok(Some(Plan { index: format!("name/{word}"), timed: false, word: Some(word.clone()) }));
    }
    let by_start = |index: String| Plan { index, timed: true, word: None };
    Ok(Some(match query.sort.as_str() {
        "" | "started" => {
            if !query.outcome.is_empty() && !query.step.is_empty() {
                // An application waits on a step or has an outcome, never both.
                return Ok(None);
            }
            if !query.outcome.is_empty() {
                by_start(format!("state/{}/", query.outcome))
            } else if !query.step.is_empty() {
                by_start(format!("state/{}/", query.step))
            } else if !query.actor.is_empty() {
                by_start(format!("actor/{}/", query.actor))
            } else if !query.operator_id.is_empty() {
                by_start(format!("operator/{}/", query.operator_id))
            } else if matches!(query.state.as_str(), "open" | "ended") {
                by_start(format!("phase/{}/", query.state))
            } else if query.overdue_at_ms > 0 {
                by_start("phase/open/".to_owned())
            } else {
                by_start("started/".to_owned())
            }
        }
        "due" => Plan { index: "due/".to_owned(), timed: false, word: None },
        "applicant" => Plan { index: "applicant/".to_owned(), timed: false, word: None },
        "state" => Plan { index: "state/".to_owned(), timed: false, word: None },
        other => return Err(bad(format!("sort {other:?} is none of started, due, applicant, state"))),
    }))
}

/// Whether `application` passes every filter of `query`.
fn accepts(definition: &Definition, query: &ApplicationListQuery, application: &Application) -> bool {
    let started = started(definition, application);
    let text = query.text.trim();
    let text_matches = text.is_empty()
        || application.application_id.starts_with(text)
        || application.applicant_iin == text
        || (!words(text).is_empty()
            && words(text).iter().all(|word| words(&application.applicant_name).iter().any(|w| w.starts_with(word))));
    text_matches
        && match query.state.as_str() {
            "open" => application.outcome.is_empty(),
            "ended" => !application.outcome.is_empty(),
            _ => true,
        }
        && (query.outcome.is_empty() || application.outcome == query.outcome)
        && (query.step.is_empty() || application.current_step == query.step)
        && (query.actor.is_empty() || waits_on(definition, application) == query.actor)
        && (query.operator_id.is_empty() || application.operator_id == query.operator_id)
        && (query.overdue_at_ms <= 0
            || (application.outcome.is_empty()
                && application.current_step_deadline_ms > 0
                && application.current_step_deadline_ms < query.overdue_at_ms))
        && (query.started_from_ms <= 0 || started >= query.started_from_ms)
        && (query.started_before_ms <= 0 || started < query.started_before_ms)
}

/// The page `query` asks for, of the applications whose list entries are
/// under `prefix` in `store`; `load` reads one application by its id (none
/// where it is not there).
pub fn page(
    store: &Store,
    prefix: &str,
    definition: &Definition,
    query: &ApplicationListQuery,
    load: impl Fn(&str) -> Result<Option<Application>, Refusal>,
) -> Result<Page, Refusal> {
    for (what, id) in [("step", &query.step), ("actor", &query.actor), ("operator id", &query.operator_id)] {
        if !id.is_empty() {
            crate::ids::check_id(what, id)?;
        }
    }
    if !query.outcome.is_empty() {
        crate::ids::check_id("outcome", &query.outcome)?;
    }
    if !matches!(query.state.as_str(), "" | "open" | "ended") {
        return Err(bad(format!("state {:?} is neither open nor ended", query.state)));
    }
    let size = match query.page_size as usize {
        0 => DEFAULT_PAGE,
        size => size.min(MAX_PAGE),
    };
    let text = query.text.trim();
    // Ids that start with the text, where there are any: those applications.
    let by_id = !text.is_empty()
        && crate::ids::check_id("application id", text).is_ok()
        && !store.index_page(&format!("{prefix}id/{text}"), "", 1, false)?.is_empty();
    let Some(plan) = plan(query, by_id)? else { return Ok(Page::default()) };
    // The order read: the query's, reversed for the page before the cursor.
    let descending = query.ascending == query.backward;
    let mut cursor = query.cursor.clone();
    if !cursor.is_empty() && !cursor.starts_with(&plan.index) {
        return Err(bad("the cursor is not of this list's order or search: start from the first page"));
    }
    // A date range bounds the range read where the index continues with the start.
    if plan.timed {
        let index = &plan.index;
        if descending && query.started_before_ms > 0 {
            let bound = format!("{index}{}", ms(query.started_before_ms));
            if cursor.is_empty() || cursor > bound {
                cursor = bound;
            }
        } else if !descending && query.started_from_ms > 0 {
            // Keys after "INDEX/MS" start with "INDEX/MS/": those started at MS or later.
            let bound = format!("{index}{}", ms(query.started_from_ms));
            if cursor.is_empty() || cursor < bound {
                cursor = bound;
            }
        }
    }
    let out_of_range = |key: &str| -> bool {
        if !plan.timed {
            return false;
        }
        let at = key[plan.index.len()..].split('/').next().and_then(|at| at.parse::<i64>().ok()).unwrap_or(0);
        if descending {
            query.started_from_ms > 0 && at < query.started_from_ms
        } else {
            query.started_before_ms > 0 && at >= query.started_before_ms
        }
    };
    let mut page = Page::default();
    let mut examined = 0;
    let chunk = (size * 2).clamp(16, 500);
    let mut candidates: Vec<String> = Vec::new();
    if query.inclusive && !query.cursor.is_empty() {
        candidates.push(query.cursor[plan.index.len()..].to_owned());
    }
    let mut after = cursor.get(plan.index.len()..).unwrap_or_default().to_owned();
    let mut exhausted = false;
    'read: loop {
        if candidates.is_empty() {
            if exhausted {
                break;
            }
            candidates = store.index_page(&format!("{prefix}{}", plan.index), &after, chunk, descending)?;
            if candidates.len() < chunk {
                exhausted = true;
            }
            if candidates.is_empty() {
                break;
            }
        }
        for entry in std::mem::take(&mut candidates) {
            let key = format!("{}{entry}", plan.index);
            if out_of_range(&key) {
                // Past the date range: nothing more that way.
                break 'read;
            }
            if page.applications.len() == size || examined == MAX_EXAMINED {
                // Full, or read enough: the next page starts after the last entry read.
                page.next_cursor = format!("{}{after}", plan.index);
                return Ok(page);
            }
            examined += 1;
            after = entry.clone();
            let Some(id) = key.rsplit('/').next() else { continue };
            let Some(application) = load(id)? else { continue };
            // An entry the application no longer makes is stale: passed over.
            if !entries(definition, &application).contains(&key) {
                continue;
            }
            // A name search finds an application once: under the first of its words the search's word starts.
            if let Some(word) = &plan.word {
                let first = words(&application.applicant_name).into_iter().find(|w| w.starts_with(word.as_str()));
                if !first.is_some_and(|first| key.starts_with(&format!("name/{first}/"))) {
                    continue;
                }
            }
            if accepts(definition, query, &application) {
                page.applications.push(application);
                page.keys.push(key);
            }
        }
    }
    // Nothing more in this direction.
    Ok(page)
}

/// The query a request without one means: the applications of `operator_id`
/// (every operator's when empty), the most recently started first, at most
/// `limit` (0: 1000).
pub fn legacy(operator_id: &str, limit: u32) -> ApplicationListQuery {
    ApplicationListQuery {
        operator_id: operator_id.to_owned(),
        page_size: if limit == 0 { MAX_PAGE as u32 } else { limit },
        ..ApplicationListQuery::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_case_and_split() {
        assert_eq!(words("Серикбаев Айгерим-Ли"), ["серикбаев", "айгерим", "ли"]);
        assert!(words("  ").is_empty());
    }

    fn application(n: i64, step: &str, outcome: &str, name: &str) -> Application {
        Application {
            application_id: format!("a-{n}"),
            applicant_name: name.to_owned(),
            applicant_iin: format!("{:012}", 850_715_300_000 + n),
            current_step: step.to_owned(),
            current_step_since_ms: 1_000_000 + n * 60_000,
            outcome: outcome.to_owned(),
            operator_id: "operator-1".to_owned(),
            ..Application::default()
        }
    }

    /// Five applications a minute apart, indexed; the third then withdrawn, with
    /// the entries of what it was written again over the change (as a rebuild
    /// racing a write could): a page reads its index after the cursor, either
    /// way, filters what the index does not, and passes a stale entry over.
    #[tokio::test]
    async fn a_page_is_read_from_the_index_after_its_cursor_and_passes_stale_entries_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8 << 20).unwrap();
        let definition = Definition::default_definition();
        let names = ["Ким Ан", "Ахметов Бек", "Ким Ли", "Серикбаев Ан", "Ахметова Ая"];
        let mut applications: Vec<Application> =
            (1..=5).map(|n| application(n, "process-5", "", names[n as usize - 1])).collect();
        let mut batch = egov_store::Batch::new();
        for application in &applications {
            for (key, present) in reindex("list/", definition, None, application) {
                batch.index(key, present);
            }
        }
        store.commit(batch).await.unwrap();
        let before = applications[2].clone();
        applications[2] = application(3, "", "withdrawn", names[2]);
        let mut batch = egov_store::Batch::new();
        for (key, present) in reindex("list/", definition, Some(&before), &applications[2]) {
            batch.index(key, present);
        }
        for (key, present) in reindex("list/", definition, None, &before) {
            batch.index(key, present);
        }
        store.commit(batch).await.unwrap();
        let load = |id: &str| Ok(applications.iter().find(|a| a.application_id == id).cloned());
        let ids = |page: &Page| page.applications.iter().map(|a| a.application_id.clone()).collect::<Vec<_>>();
        let query = |edit: &dyn Fn(&mut ApplicationListQuery)| {
            let mut query = ApplicationListQuery { page_size: 2, ..ApplicationListQuery::default() };
            edit(&mut query);
            page(&store, "list/", definition, &query, load).unwrap()
        };

        // Newest first, two a page, each page after the last key of the one before.
        let first = query(&|_| {});
        assert_eq!(ids(&first), ["a-5", "a-4"]);
        let cursor = first.keys[1].clone();
        let second = query(&|q| q.cursor = cursor.clone());
        assert_eq!(ids(&second), ["a-3", "a-2"]);
        // Backward from the second page's first row: the first page, read in reverse; inclusive: the row too.
        let cursor = second.keys[0].clone();
        assert_eq!(ids(&query(&|q| (q.cursor, q.backward) = (cursor.clone(), true))), ["a-4", "a-5"]);
        let back = query(&|q| (q.cursor, q.backward, q.inclusive) = (cursor.clone(), true, true));
        assert_eq!(ids(&back), ["a-3", "a-4"]);
        // The last page says nothing follows.
        let cursor = second.keys[1].clone();
        let last = query(&|q| q.cursor = cursor.clone());
        assert_eq!((ids(&last), last.next_cursor.as_str()), (vec!["a-1".to_owned()], ""));

        // The stale state entry of a-3 (still at process 5) is passed over: in the order by state it is listed
        // once, by its outcome, and no longer among those at process 5.
        let by_state = query(&|q| (q.sort, q.page_size) = ("state".to_owned(), 10));
        assert_eq!(ids(&by_state), ["a-3", "a-5", "a-4", "a-2", "a-1"], "withdrawn after process-5, descending");
        assert_eq!(
            ids(&query(&|q| (q.step, q.page_size) = ("process-5".to_owned(), 10))),
            ["a-5", "a-4", "a-2", "a-1"]
        );
        assert_eq!(ids(&query(&|q| q.outcome = "withdrawn".to_owned())), ["a-3"]);
        assert_eq!(ids(&query(&|q| (q.state, q.page_size) = ("open".to_owned(), 10))), ["a-5", "a-4", "a-2", "a-1"]);

        // Searches: by words the name starts with (each application once), by IIN, by the start of an id.
        let kim = query(&|q| (q.text, q.page_size) = ("ким".to_owned(), 10));
        assert_eq!(ids(&kim), ["a-3", "a-1"], "by name word, then by start, newest first");
        assert_eq!(ids(&query(&|q| q.text = "АХМЕТОВ Б".to_owned())), ["a-2"]);
        assert_eq!(ids(&query(&|q| (q.text, q.page_size) = ("ахмет".to_owned(), 10))), ["a-5", "a-2"]);
        assert_eq!(ids(&query(&|q| q.text = "850715300004".to_owned())), ["a-4"]);
        assert_eq!(ids(&query(&|q| (q.text, q.page_size) = ("a-".to_owned(), 10))).len(), 5);

        // A date range bounds the read: started from a-2's minute, before a-4's.
        let range = |q: &mut ApplicationListQuery| {
            (q.started_from_ms, q.started_before_ms, q.page_size) = (1_120_000, 1_240_000, 10);
        };
        assert_eq!(ids(&query(&range)), ["a-3", "a-2"]);
        assert_eq!(
            ids(&query(&|q| {
                range(q);
                q.ascending = true;
            })),
            ["a-2", "a-3"]
        );

        // A cursor of another order, and an order that is none, are refused.
        let refused = |edit: &dyn Fn(&mut ApplicationListQuery)| {
            let mut q = ApplicationListQuery::default();
            edit(&mut q);
            page(&store, "list/", definition, &q, load).unwrap_err().reason
        };
        assert_eq!(refused(&|q| q.cursor = "due/0".to_owned()), "request.bad_list_query");
        assert_eq!(refused(&|q| q.sort = "size".to_owned()), "request.bad_list_query");
        assert_eq!(refused(&|q| q.state = "closed".to_owned()), "request.bad_list_query");
    }

    #[test]
    fn times_in_keys_sort_as_numbers() {
        assert!(ms(999) < ms(1000) && ms(1_780_282_800_000) < ms(10_000_000_000_000) && ms(-5) == ms(0));
    }
}
