//! The lists of applications a page at a time, read from the participants'
//! list indexes (`egov_runtime::listing`): the workstation's
//! (`ListApplications`) and, for the whole list, the ARM's of each channel
//! that does not start at the State Corporation (`ListRegistrations`), merged
//! in the list's order.
//!
//! Where a page starts is a boundary in each source: before the first row
//! read (empty), after its last (`~`), just after a row (`a` and its key) or
//! just before one (`b` and its key). A page read forward (the next) or
//! backward (the previous) from the boundaries gives the boundaries of the
//! pages either side of it, which the console's links carry in the URL (`at`).

use egov_proto::workstation_service_client::WorkstationServiceClient;
use egov_proto::{Application, ApplicationListQuery, ListApplicationsRequest};
use egov_runtime::ids;

use crate::{App, Problem};

/// Where the rows of a list come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Workstation,
    /// The ARM's registrations of this channel.
    Channel(String),
}

impl Source {
    fn name(&self) -> &str {
        match self {
            Source::Workstation => "workstation",
            Source::Channel(channel) => channel,
        }
    }
}

/// The sources of the whole list: the workstation, and each channel that
/// does not start at the State Corporation.
pub fn sources(app: &App) -> Vec<Source> {
    let definition = app.definition();
    let mut sources = vec![Source::Workstation];
    sources.extend(
        definition
            .channels
            .iter()
            .filter(|channel| channel.start != definition.service.start)
            .map(|channel| Source::Channel(channel.id.clone())),
    );
    sources
}

/// Each source's boundary, by the source's name (none: before its first row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boundaries(Vec<(String, String)>);

impl Boundaries {
    /// From the URL's `at`: lines of `SOURCE=BOUNDARY`.
    pub fn parse(text: &str) -> Boundaries {
        Boundaries(
            text.lines()
                .filter_map(|line| line.split_once('='))
                .map(|(source, at)| (source.to_owned(), at.to_owned()))
                .collect(),
        )
    }

    /// For the URL's `at`.
    pub fn encode(&self) -> String {
        self.0.iter().map(|(source, at)| format!("{source}={at}")).collect::<Vec<_>>().join("\n")
    }

    fn of(&self, source: &Source) -> &str {
        self.0.iter().find(|(name, _)| name == source.name()).map_or("", |(_, at)| at.as_str())
    }

    fn set(&mut self, source: &Source, at: String) {
        match self.0.iter_mut().find(|(name, _)| name == source.name()) {
            Some(pair) => pair.1 = at,
            None => self.0.push((source.name().to_owned(), at)),
        }
    }

    /// Whether every source is before its first row: the first page.
    pub fn at_start(&self) -> bool {
        self.0.iter().all(|(_, at)| at.is_empty())
    }

    /// Whether every source is past its last row.
    fn at_end(&self, sources: &[Source]) -> bool {
        sources.iter().all(|source| self.of(source) == "~")
    }
}

/// One page: the rows in the list's order, and the boundaries of the page
/// before it and after it (none where there is no such page).
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Application>,
    pub previous: Option<Boundaries>,
    pub next: Option<Boundaries>,
    /// A source that could not be read, and why (the others are listed).
    pub problem: Option<Problem>,
}

/// What one source read: its rows in the order read, their keys, and where it continues.
struct Read {
    source: Source,
    rows: Vec<Application>,
    keys: Vec<String>,
    next_cursor: String,
}

async fn read_source(
    app: &App,
    source: &Source,
    query: ApplicationListQuery,
) -> Result<(Vec<Application>, Vec<String>, String), Problem> {
    match source {
        Source::Workstation => {
            let channel = app
                .channel(&app.config.topology.workstation, ids::SC_WORKSTATION)
                .map_err(|error| Problem::from_error("console.unreachable", &error))?;
            let answer = WorkstationServiceClient::new(channel)
                .max_decoding_message_size(egov_client::MAX_MESSAGE_BYTES)
                .list_applications(ListApplicationsRequest { query: Some(query), ..Default::default() })
                .await
                .map_err(|status| Problem::from_status(&status))?
                .into_inner();
            Ok((answer.applications, answer.keys, answer.next_cursor))
        }
        Source::Channel(channel) => {
            let staff = crate::applications::staff_client(app)
                .map_err(|error| Problem::from_error("console.unreachable", &error))?;
            let answer =
                staff.registration_page(channel, query).await.map_err(|status| Problem::from_status(&status))?;
            let rows = answer.registrations.into_iter().map(|r| r.application.unwrap_or_default()).collect();
            Ok((rows, answer.keys, answer.next_cursor))
        }
    }
}

/// The page of `query`'s list (its filters and order; its cursor fields are
/// set here) from `at`, the next one (forward) or the previous one, of at
/// most `size` rows, merged from `sources`.
pub async fn page(
    app: &App,
    sources: &[Source],
    query: &ApplicationListQuery,
    at: &Boundaries,
    forward: bool,
    size: usize,
) -> Page {
    let mut reads = Vec::new();
    let mut problem = None;
    for source in sources {
        let boundary = at.of(source);
        // Where the source's read starts, in the direction read, or nothing to read.
        let (cursor, inclusive) = match (forward, boundary) {
            (true, "~") | (false, "") => continue,
            (_, "" | "~") => (String::new(), false),
            (true, b) if b.starts_with('a') => (b.get(1..).unwrap_or_default().to_owned(), false),
            (true, b) => (b.get(1..).unwrap_or_default().to_owned(), true),
            (false, b) if b.starts_with('b') => (b.get(1..).unwrap_or_default().to_owned(), false),
            (false, b) => (b.get(1..).unwrap_or_default().to_owned(), true),
        };
        let query =
            ApplicationListQuery { cursor, inclusive, backward: !forward, page_size: size as u32, ..query.clone() };
        match read_source(app, source, query).await {
            Ok((rows, keys, next_cursor)) => reads.push(Read { source: source.clone(), rows, keys, next_cursor }),
            // The ARM down leaves the State Corporation's applications listed.
            Err(refused) if *source != Source::Workstation => {
                tracing::warn!(source = source.name(), error = %refused.code, "a list's source unread");
            }
            Err(refused) => problem = Some(refused),
        }
    }
    // Merged in the order read: the list's, or its reverse for the page before.
    let descending = query.ascending != forward;
    let mut taken = vec![0usize; reads.len()];
    let mut rows = Vec::new();
    while rows.len() < size {
        let mut best: Option<usize> = None;
        for (index, read) in reads.iter().enumerate() {
            let Some(key) = read.keys.get(taken[index]) else { continue };
            let better = match best {
                None => true,
                Some(best) => {
                    let other = &reads[best].keys[taken[best]];
                    if descending { key > other } else { key < other }
                }
            };
            if better {
                best = Some(index);
            }
        }
        let Some(best) = best else { break };
        rows.push(reads[best].rows[taken[best]].clone());
        taken[best] += 1;
    }
    // Each source's boundaries either side of the page.
    let mut before = at.clone();
    let mut after = at.clone();
    for (index, read) in reads.iter().enumerate() {
        let consumed = taken[index];
        let all = consumed == read.rows.len();
        let more = !read.next_cursor.is_empty();
        // Past what was read, in the direction read: where it continues.
        let past = if all && more {
            Some(format!("{}{}", if forward { 'a' } else { 'b' }, read.next_cursor))
        } else if all {
            // Nothing more that way.
            Some(if forward { "~".to_owned() } else { String::new() })
        } else if consumed > 0 {
            Some(format!("{}{}", if forward { 'a' } else { 'b' }, read.keys[consumed - 1]))
        } else {
            None
        };
        // The near side: just before (forward) or after (backward) the first row taken.
        let near = (consumed > 0).then(|| format!("{}{}", if forward { 'b' } else { 'a' }, read.keys[0]));
        let (near_side, far_side) = if forward { (&mut before, &mut after) } else { (&mut after, &mut before) };
        if let Some(near) = near {
            near_side.set(&read.source, near);
        }
        if let Some(past) = past {
            far_side.set(&read.source, past);
        }
    }
    if !forward {
        rows.reverse();
    }
    let (previous, next) = if forward {
        ((!at.at_start()).then_some(before), (!after.at_end(sources)).then_some(after))
    } else {
        ((!before.at_start()).then_some(before), Some(after))
    };
    // A source that could not be read: no page after this one is offered as if it were known.
    let next = next.filter(|_| problem.is_none());
    Page { rows, previous, next, problem }
}

/// Every row of a list, a page at a time from the first: what an export streams.
#[derive(Debug, Default)]
pub struct Pager {
    at: Boundaries,
    done: bool,
}

impl Pager {
    /// The next page's rows of `query`'s list (of at most `size`); none after the last.
    pub async fn next(
        &mut self,
        app: &App,
        sources: &[Source],
        query: &ApplicationListQuery,
        size: usize,
    ) -> Result<Option<Vec<Application>>, Problem> {
        if self.done {
            return Ok(None);
        }
        let page = page(app, sources, query, &self.at, true, size).await;
        if let Some(problem) = page.problem {
            return Err(problem);
        }
        match page.next {
            Some(next) => self.at = next,
            None => self.done = true,
        }
        Ok(Some(page.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_go_through_the_url_whole() {
        let mut at = Boundaries::default();
        assert!(at.at_start());
        at.set(&Source::Workstation, "astarted/0001780282800000/app-1".to_owned());
        at.set(&Source::Channel("provider-office".to_owned()), "~".to_owned());
        let again = Boundaries::parse(&at.encode());
        assert_eq!(again, at);
        assert!(!again.at_start());
        assert!(!again.at_end(&[Source::Workstation, Source::Channel("provider-office".to_owned())]));
        assert!(again.at_end(&[Source::Channel("provider-office".to_owned())]));
    }
}
