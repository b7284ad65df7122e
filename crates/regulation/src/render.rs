//! Drawings of a definition: a Mermaid flowchart and a Graphviz graph of the
//! regulation's block diagram (Annex 1: one lane per actor), and a plain-text
//! table of the steps. Pure, and deterministic: the output depends only on the
//! definition, in the definition's order.

use std::collections::HashMap;

use crate::definition::{BranchTarget, Definition, Step, StepKind};

/// The most characters of a step's title shown in a diagram's node.
const SHORT_TITLE_CHARS: usize = 48;

/// The node where the diagrams begin.
const START_NODE: &str = "start_node";
/// The node every final step leads to.
const END_NODE: &str = "end_node";

/// One arrow of the process graph: a task's `next`, or a condition's branch.
struct Edge<'a> {
    from: &'a Step,
    to: &'a str,
    /// "yes" or "no", with the outcome the branch decides ("no: refused").
    label: Option<String>,
}

/// The definition as a Mermaid `flowchart TD`: a start node, one subgraph
/// lane per actor (titled from `[actors]`), a node per step with its id, a
/// short title and its duration, conditions as diamonds, and the branches
/// labelled "yes" and "no" with the outcome they decide.
pub fn mermaid(definition: &Definition) -> String {
    let node_ids = node_ids(definition);
    let node = |step_id: &str| node_ids.get(step_id).cloned().unwrap_or_else(|| sanitized(step_id));
    let mut lines = vec![
        "flowchart TD".to_owned(),
        format!("    %% {}", mermaid_text(&definition.service.code)),
        format!("    {START_NODE}([\"start\"])"),
    ];
    for (lane_index, (role, steps)) in lanes(definition).into_iter().enumerate() {
        lines.push(format!(
            "    subgraph lane{lane_index}_{}[\"{}\"]",
            sanitized(role),
            mermaid_text(&actor_title(definition, role))
        ));
        for step in steps {
            let label = node_label(step).iter().map(|part| mermaid_text(part)).collect::<Vec<_>>().join("<br/>");
            let shape = match step.kind {
                StepKind::Task => format!("[\"{label}\"]"),
                StepKind::Condition => format!("{{\"{label}\"}}"),
            };
            lines.push(format!("        {}{shape}", node(&step.id)));
        }
        lines.push("    end".to_owned());
    }
    lines.push(format!("    {END_NODE}([\"end\"])"));
    lines.push(format!("    {START_NODE} --> {}", node(&definition.service.start)));
    for channel in other_channels(definition) {
        lines.push(format!("    {START_NODE} -->|\"{}\"| {}", mermaid_text(&channel.id), node(&channel.start)));
    }
    for edge in edges(definition) {
        match &edge.label {
            None => lines.push(format!("    {} --> {}", node(&edge.from.id), node(edge.to))),
            Some(label) => {
                lines.push(format!("    {} -->|\"{}\"| {}", node(&edge.from.id), mermaid_text(label), node(edge.to)))
            }
        }
    }
    for step in definition.steps().iter().filter(|step| step.is_final()) {
        lines.push(format!("    {} -.-> {END_NODE}", node(&step.id)));
    }
    lines.join("\n") + "\n"
}

/// The same graph as [`mermaid`] for Graphviz: actors as clusters, conditions
/// as diamonds.
pub fn dot(definition: &Definition) -> String {
    let node_ids = node_ids(definition);
    let node = |step_id: &str| node_ids.get(step_id).cloned().unwrap_or_else(|| sanitized(step_id));
    let mut lines = vec![
        format!("digraph \"{}\" {{", dot_text(&definition.service.code)),
        "    rankdir=TB;".to_owned(),
        "    node [shape=box, style=rounded];".to_owned(),
        format!("    {START_NODE} [shape=oval, label=\"start\"];"),
        format!("    {END_NODE} [shape=oval, label=\"end\"];"),
    ];
    for (lane_index, (role, steps)) in lanes(definition).into_iter().enumerate() {
        lines.push(format!("    subgraph cluster_{lane_index}_{} {{", sanitized(role)));
        lines.push(format!("        label=\"{}\";", dot_text(&actor_title(definition, role))));
        for step in steps {
            let label = node_label(step).iter().map(|part| dot_text(part)).collect::<Vec<_>>().join("\\n");
            let shape = match step.kind {
                StepKind::Task => "",
                StepKind::Condition => ", shape=diamond, style=solid",
            };
            lines.push(format!("        {} [label=\"{label}\"{shape}];", node(&step.id)));
        }
        lines.push("    }".to_owned());
    }
    lines.push(format!("    {START_NODE} -> {};", node(&definition.service.start)));
    for channel in other_channels(definition) {
        lines.push(format!("    {START_NODE} -> {} [label=\"{}\"];", node(&channel.start), dot_text(&channel.id)));
    }
    for edge in edges(definition) {
        match &edge.label {
            None => lines.push(format!("    {} -> {};", node(&edge.from.id), node(edge.to))),
            Some(label) => {
                lines.push(format!("    {} -> {} [label=\"{}\"];", node(&edge.from.id), node(edge.to), dot_text(label)))
            }
        }
    }
    for step in definition.steps().iter().filter(|step| step.is_final()) {
        lines.push(format!("    {} -> {END_NODE} [style=dashed];", node(&step.id)));
    }
    lines.push("}".to_owned());
    lines.join("\n") + "\n"
}

/// A plain-text table of the steps: id, kind, actor, duration, where it
/// leads, effect and title, one step a line in the definition's order.
pub fn table(definition: &Definition) -> String {
    let header = ["step", "kind", "actor", "duration", "next", "effect", "title"].map(str::to_owned);
    let mut rows = vec![header];
    for step in definition.steps() {
        rows.push([
            step.id.clone(),
            match step.kind {
                StepKind::Task => "task".to_owned(),
                StepKind::Condition => "condition".to_owned(),
            },
            step.actor.clone(),
            step.duration.map(|duration| duration.to_string()).unwrap_or_else(|| "-".to_owned()),
            leads_to(step),
            step.effect.map_or_else(|| "-".to_owned(), |effect| effect.to_string()),
            step.title.en.clone(),
        ]);
    }
    let column_count = rows[0].len();
    let widths: Vec<usize> =
        (0..column_count).map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0)).collect();
    let mut lines = Vec::with_capacity(rows.len() + 1);
    for (row_index, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(column, cell)| if column + 1 == column_count { cell.clone() } else { pad(cell, widths[column]) })
            .collect();
        lines.push(cells.join("  ").trim_end().to_owned());
        if row_index == 0 {
            let rule: Vec<String> = widths.iter().map(|&width| "-".repeat(width.max(1))).collect();
            lines.push(rule.join("  "));
        }
    }
    lines.join("\n") + "\n"
}

/// The service as the definition describes it, for a reader before the steps'
/// table: its name, provider, form, result form, cost and channels, the terms,
/// and the refusal grounds with the step that gives each.
pub fn summary(definition: &Definition) -> String {
    let service = &definition.service;
    let given = |value: &Option<String>| value.clone().unwrap_or_else(|| "not given".to_owned());
    let mut out = String::new();
    out.push_str(&format!("service        {}\n", service.code));
    out.push_str(&format!("name           {}\n", service.name_en));
    out.push_str(&format!("regulation     {}\n", service.regulation));
    out.push_str(&format!("provider       {}\n", service.provider));
    out.push_str(&format!("form           {}\n", given(&service.form)));
    out.push_str(&format!("result form    {}\n", given(&service.result_form)));
    out.push_str(&format!("cost           {}\n", given(&service.cost)));
    for channel in &definition.channels {
        let instead: Vec<String> =
            channel.instead.iter().map(|(step, own)| format!("{own} instead of {step}")).collect();
        let lent: Vec<String> =
            channel.grounds.iter().map(|(step, of)| format!("{step} also gives the grounds of {of}")).collect();
        let instead: Vec<String> =
            [instead.join(", "), lent.join(", ")].into_iter().filter(|part| !part.is_empty()).collect();
        out.push_str(&format!(
            "channel        {}: {} (from {}{})\n",
            channel.id,
            channel.title.en,
            channel.start,
            if instead.is_empty() { String::new() } else { format!("; {}", instead.join("; ")) }
        ));
    }
    for entry in &definition.hours {
        let periods = |periods: &[(chrono::NaiveTime, chrono::NaiveTime)]| {
            periods
                .iter()
                .map(|(from, to)| format!("{}-{}", from.format("%H:%M"), to.format("%H:%M")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let saturdays = if entry.hours.saturdays.is_empty() {
            String::new()
        } else {
            format!("; Saturdays {}", periods(&entry.hours.saturdays))
        };
        out.push_str(&format!(
            "hours          {}: {}{saturdays}{}\n",
            entry.actors.join(", "),
            periods(&entry.hours.working_days),
            if entry.assumption { " (assumption)" } else { "" }
        ));
    }
    for term in &definition.terms {
        let channel = term.channel.as_ref().map(|c| format!(", channel {c}")).unwrap_or_default();
        out.push_str(&format!(
            "term           {}: {} from {} to {} ({}{channel})\n",
            term.id, term.duration, term.from, term.to, term.title.en
        ));
    }
    for ground in &definition.refusal_grounds {
        let step = ground
            .step
            .clone()
            .or_else(|| definition.step_by_effect(crate::Effect::CheckDocuments).map(|step| step.id.clone()));
        out.push_str(&format!(
            "refusal ground {} at {}: {}{}\n",
            ground.code,
            step.unwrap_or_else(|| "-".to_owned()),
            ground.en,
            if ground.assumption { " (assumption)" } else { "" }
        ));
    }
    out
}

/// Where a step leads, for the table: "process-2", "end", or
/// "yes: action-2 (permitted); no: process-8 (refused)".
fn leads_to(step: &Step) -> String {
    match step.kind {
        StepKind::Task => step.next.clone().unwrap_or_else(|| "end".to_owned()),
        StepKind::Condition => {
            let branch = |name: &str, target: Option<&BranchTarget>| match target {
                None => format!("{name}: -"),
                Some(BranchTarget { next, outcome: None }) => format!("{name}: {next}"),
                Some(BranchTarget { next, outcome: Some(outcome) }) => format!("{name}: {next} ({outcome})"),
            };
            format!("{}; {}", branch("yes", step.yes.as_ref()), branch("no", step.no.as_ref()))
        }
    }
}

fn pad(text: &str, width: usize) -> String {
    let length = text.chars().count();
    let mut padded = text.to_owned();
    padded.extend(std::iter::repeat_n(' ', width.saturating_sub(length)));
    padded
}

/// Every arrow of the definition, in the definition's order, labelled in English.
fn edges(definition: &Definition) -> Vec<Edge<'_>> {
    edges_in(definition, "")
}

/// A duration in `lang`: working minutes ("20 мин") or working days ("2 ж.к.", "2 р.д.", "2 wd").
pub fn duration_in(duration: crate::definition::Duration, lang: &str) -> String {
    use crate::definition::Duration;
    match (duration, lang) {
        (Duration::Minutes(n), "kk" | "ru") => format!("{n} мин"),
        (Duration::WorkingDays(n), "kk") => format!("{n} ж.к."),
        (Duration::WorkingDays(n), "ru") => format!("{n} р.д."),
        (duration, _) => duration.to_string(),
    }
}

/// "yes" and "no" in `lang` ("kk", "ru"; anything else English).
pub fn yes_no(lang: &str, yes: bool) -> &'static str {
    match (lang, yes) {
        ("kk", true) => "иә",
        ("kk", false) => "жоқ",
        ("ru", true) => "да",
        ("ru", false) => "нет",
        (_, true) => "yes",
        (_, false) => "no",
    }
}

/// Every arrow of the definition, its branches labelled in `lang` (an empty
/// `lang`: the codes of the Mermaid and Graphviz drawings, "no: refused").
fn edges_in<'a>(definition: &'a Definition, lang: &str) -> Vec<Edge<'a>> {
    let mut edges = Vec::new();
    for step in definition.steps() {
        if let Some(next) = &step.next {
            edges.push(Edge { from: step, to: next, label: None });
        }
        for (yes, target) in [(true, &step.yes), (false, &step.no)] {
            if let Some(target) = target {
                let name = yes_no(lang, yes);
                let label = match &target.outcome {
                    None => name.to_owned(),
                    Some(outcome) if lang.is_empty() => format!("{name}: {outcome}"),
                    Some(outcome) => format!("{name}: {}", definition.outcome_name(outcome, lang)),
                };
                edges.push(Edge { from: step, to: &target.next, label: Some(label) });
            }
        }
    }
    // A channel's own steps, where they take the place of the route's.
    let mut replaced = Vec::new();
    for edge in &edges {
        for channel in &definition.channels {
            if let Some(instead) = channel.instead.get(edge.to) {
                replaced.push(Edge { from: edge.from, to: instead, label: Some(channel.id.clone()) });
            }
        }
    }
    edges.extend(replaced);
    edges
}

/// The channels that start elsewhere than the service's start.
fn other_channels(definition: &Definition) -> impl Iterator<Item = &crate::definition::Channel> {
    definition.channels.iter().filter(|channel| channel.start != definition.service.start)
}

/// The actors that have steps, in the order of their first step, each with
/// its steps in the definition's order.
fn lanes(definition: &Definition) -> Vec<(&str, Vec<&Step>)> {
    let mut lanes: Vec<(&str, Vec<&Step>)> = Vec::new();
    for step in definition.steps() {
        match lanes.iter_mut().find(|(role, _)| *role == step.actor) {
            Some((_, steps)) => steps.push(step),
            None => lanes.push((step.actor.as_str(), vec![step])),
        }
    }
    lanes
}

/// The actor's title from `[actors]`, or the role itself.
fn actor_title(definition: &Definition, role: &str) -> String {
    definition.actor_name(role, "en").to_owned()
}

/// A node's lines: the step id, the short title, and the duration if any.
fn node_label(step: &Step) -> Vec<String> {
    let mut parts = vec![step.id.clone(), short_title(&step.title.en)];
    if let Some(duration) = step.duration {
        parts.push(duration.to_string());
    }
    parts
}

/// The title cut at a word boundary to at most [`SHORT_TITLE_CHARS`], with
/// "…" where it was cut.
pub(crate) fn short_title(title: &str) -> String {
    if title.chars().count() <= SHORT_TITLE_CHARS {
        return title.to_owned();
    }
    let mut short = String::new();
    for word in title.split_whitespace() {
        let added =
            if short.is_empty() { word.chars().count() } else { short.chars().count() + 1 + word.chars().count() };
        if added > SHORT_TITLE_CHARS {
            break;
        }
        if !short.is_empty() {
            short.push(' ');
        }
        short.push_str(word);
    }
    if short.is_empty() {
        short = title.chars().take(SHORT_TITLE_CHARS).collect();
    }
    short.push('…');
    short
}

/// A node id for every step, safe in both Mermaid and Graphviz: the position
/// keeps it unique, the sanitised step id keeps it readable ("step8_condition_2").
fn node_ids(definition: &Definition) -> HashMap<&str, String> {
    definition
        .steps()
        .iter()
        .enumerate()
        .map(|(position, step)| (step.id.as_str(), format!("step{position}_{}", sanitized(&step.id))))
        .collect()
}

/// ASCII letters and digits kept, anything else an underscore.
pub(crate) fn sanitized(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Text safe inside a quoted Mermaid label: quotes and the characters Mermaid
/// reads as markup become entity codes, line breaks spaces.
pub(crate) fn mermaid_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => escaped.push_str("#quot;"),
            '#' => escaped.push_str("#35;"),
            '<' => escaped.push_str("#lt;"),
            '>' => escaped.push_str("#gt;"),
            '`' => escaped.push_str("#96;"),
            '\n' | '\r' => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Text safe inside a quoted Graphviz string.
pub(crate) fn dot_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            '\n' | '\r' => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The definition as an SVG block diagram (Annex 1: one lane per actor, a
/// row per step in the definition's order), with `done` steps and the
/// `current` one marked by their CSS class (`step done`, `step current`,
/// the latter also `aria-current="step"`). Each step is a `g` with its id
/// in `data-step`. Its words are in `lang` ("kk", "ru" or "en").
pub fn svg(definition: &Definition, done: &[&str], current: Option<&str>, lang: &str) -> String {
    // Text is measured at a generous 8 px a character of 12 px text (Latin and Cyrillic), so every line
    // wrapped to WRAP characters fits its box: nothing is cut, and the boxes grow to hold their titles.
    const CHAR_W: usize = 8;
    const WRAP: usize = 26;
    const LINE: usize = 15;
    const BOX_W: usize = WRAP * CHAR_W + 16;
    const COLUMN: usize = BOX_W + 40;
    // Room under a box for its branches' labels.
    const GAP: usize = 44;
    // A condition is drawn as a hexagon (the decision shape) whose points take this much of its width.
    const POINT: usize = 14;
    let lanes = lanes(definition);
    let lane_of = |role: &str| lanes.iter().position(|(r, _)| *r == role).unwrap_or(0);
    let lane_titles: Vec<Vec<String>> =
        lanes.iter().map(|(role, _)| wrap(definition.actor_name(role, lang), WRAP + 2)).collect();
    let top = 14 + LINE * lane_titles.iter().map(Vec::len).max().unwrap_or(1) + 12;
    // Each step's lines: its id, its whole title wrapped, its duration.
    let lines_of = |step: &Step| {
        let mut lines = vec![step.id.clone()];
        lines.extend(wrap(step.title.get(lang), WRAP));
        if let Some(duration) = step.duration {
            lines.push(duration_in(duration, lang));
        }
        lines
    };
    let mut boxes: HashMap<&str, (usize, usize, usize, Vec<String>)> = HashMap::new();
    let mut y = top;
    for step in definition.steps() {
        let lines = lines_of(step);
        let height = LINE * lines.len() + 12;
        let x = lane_of(&step.actor) * COLUMN + COLUMN / 2;
        boxes.insert(step.id.as_str(), (x, y, height, lines));
        y += height + GAP;
    }
    let width = lanes.len().max(1) * COLUMN + 60;
    let height = y + 10;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"diagram\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-labelledby=\"diagram-title\">\n<title id=\"diagram-title\">{}</title>\n",
        xml_text(&format!("{}: {}", definition.service.code, definition.service.name(lang)))
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#57606a\"/></marker></defs>\n");
    for (index, title) in lane_titles.iter().enumerate() {
        let x = index * COLUMN;
        out.push_str(&format!(
            "<rect class=\"lane\" x=\"{x}\" y=\"0\" width=\"{COLUMN}\" height=\"{height}\" fill=\"{}\" stroke=\"#d0d7de\"/>\n",
            if index % 2 == 0 { "#fafbfc" } else { "#f3f5f7" },
        ));
        out.push_str(&format!(
            "<text class=\"lane-title\" x=\"{}\" y=\"14\" text-anchor=\"middle\" font-weight=\"bold\">",
            x + COLUMN / 2
        ));
        for (line_index, line) in title.iter().enumerate() {
            out.push_str(&format!(
                "<tspan x=\"{}\" dy=\"{}\">{}</tspan>",
                x + COLUMN / 2,
                if line_index == 0 { 0 } else { LINE },
                xml_text(line)
            ));
        }
        out.push_str("</text>\n");
    }
    // Where each edge leaves its box: a condition's "yes" to the left of its label's column, "no" to the right,
    // a channel's own step further down; the labels sit under the box, each in its own place.
    let mut labels = Vec::new();
    for edge in edges_in(definition, lang) {
        let (Some(from), Some(to)) = (boxes.get(edge.from.id.as_str()), boxes.get(edge.to)) else { continue };
        let (x1, y1, h1, _) = from;
        let (x2, y2, h2, _) = to;
        let (yes, no) = (yes_no(lang, true), yes_no(lang, false));
        let (dx, label_dy, anchor) = match edge.label.as_deref() {
            Some(label) if label == yes || label.starts_with(&format!("{yes}:")) => (-30i64, 14, "end"),
            Some(label) if label == no || label.starts_with(&format!("{no}:")) => (30, 14, "start"),
            Some(_) => (30, 30, "start"),
            None => (0, 0, "middle"),
        };
        let start_x = (*x1 as i64 + dx) as usize;
        let path = if y2 > y1 {
            // Down: out of the box's bottom into the gap under it, along the gap to where it goes on, and down;
            // past the rows between, it goes down the channel between two lanes (where no box is), then along
            // the gap over the target to it. Every step has a row of its own, so a gap holds no box.
            let end_x = (*x2 as i64 + dx / 3) as usize;
            let below = y1 + h1 + 6;
            let above = y2 - 6;
            if below + GAP >= *y2 {
                format!("M {start_x} {} L {start_x} {below} L {end_x} {below} L {end_x} {y2}", y1 + h1)
            } else {
                // The channel on the left of the target's lane, or on its right for a "no" (to the right).
                let lane_left = x2 - COLUMN / 2;
                let channel = if dx > 0 { lane_left + COLUMN - 6 } else { lane_left + 6 };
                format!(
                    "M {start_x} {} L {start_x} {below} L {channel} {below} L {channel} {above} L {end_x} {above} L {end_x} {y2}",
                    y1 + h1
                )
            }
        } else {
            // Back up or sideways: around the right of the boxes.
            let side = x1.max(x2) + BOX_W / 2 + 12;
            format!(
                "M {} {} L {side} {} L {side} {} L {} {}",
                x1 + BOX_W / 2,
                y1 + h1 / 2,
                y1 + h1 / 2,
                y2 + h2 / 2,
                x2 + BOX_W / 2,
                y2 + h2 / 2
            )
        };
        out.push_str(&format!(
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"{path}\"/>\n",
            xml_text(&edge.from.id),
            xml_text(edge.to)
        ));
        if let Some(label) = &edge.label {
            let x = if anchor == "end" { start_x - 4 } else { start_x + 4 };
            labels.push(format!(
                "<text class=\"edge-label\" x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>\n",
                y1 + h1 + label_dy,
                xml_text(label)
            ));
        }
    }
    for step in definition.steps() {
        let Some((x, top, box_h, lines)) = boxes.get(step.id.as_str()) else { continue };
        let (x, top, box_h) = (*x, *top, *box_h);
        let left = x - BOX_W / 2;
        let state = if current == Some(step.id.as_str()) {
            " current"
        } else if done.contains(&step.id.as_str()) {
            " done"
        } else {
            ""
        };
        let aria = if state == " current" { " aria-current=\"step\"" } else { "" };
        out.push_str(&format!(
            "<g class=\"step{state}\" data-step=\"{}\"{aria}><title>{}</title>",
            xml_text(&step.id),
            xml_text(&format!("{}: {}", step.id, step.title.get(lang)))
        ));
        match step.kind {
            StepKind::Task => out.push_str(&format!(
                "<rect class=\"shape\" x=\"{left}\" y=\"{top}\" width=\"{BOX_W}\" height=\"{box_h}\" rx=\"6\"/>"
            )),
            StepKind::Condition => {
                let (right, middle, bottom) = (left + BOX_W, top + box_h / 2, top + box_h);
                out.push_str(&format!(
                    "<polygon class=\"shape\" points=\"{},{top} {},{top} {right},{middle} {},{bottom} {},{bottom} {left},{middle}\"/>",
                    left + POINT,
                    right - POINT,
                    right - POINT,
                    left + POINT
                ))
            }
        }
        for (index, line) in lines.iter().enumerate() {
            let weight = if index == 0 { " font-weight=\"bold\"" } else { "" };
            out.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\"{weight}>{}</text>",
                top + 4 + LINE * (index + 1) - 3,
                xml_text(line)
            ));
        }
        out.push_str("</g>\n");
    }
    for label in labels {
        out.push_str(&label);
    }
    out.push_str("</svg>\n");
    out
}

/// `text` escaped for SVG's text and attributes.
pub(crate) fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(crate) fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        text.chars().take(chars - 1).collect::<String>() + "…"
    }
}

/// `text` in lines of at most `width` characters, at word boundaries (a
/// longer word stands alone on its line).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    type Render = fn(&Definition) -> String;

    const RENDERINGS: [(&str, Render); 3] = [("mermaid", mermaid), ("dot", dot), ("table", table)];

    /// A small definition with quotes, a hash and markup in its texts.
    const AWKWARD: &str = r##"
[service]
code = "example.awkward"
start = "end"
provider = "p"
provider_ru = "п"
provider_kk = "п"
regulation = "r"
regulation_ru = "р"
regulation_kk = "р"
name_en = "e"
name_ru = "r"
name_kk = "k"

[actors]
clerk = { en = "the \"chief\" clerk <main> #1", ru = "р", kk = "к" }
machine = { en = "a machine", ru = "р", kk = "к" }
[outcomes]
withdrawn = { en = "withdrawn", ru = "отозвана", kk = "кері қайтарылды" }
"\"good\"" = { en = "good", ru = "хорошо", kk = "жақсы" }

[[step]]
id = "end"
actor = "clerk"
title = { en = "say \"hello\" to `everyone` <b>#now</b>", ru = "р", kk = "к" }
duration = "3 min"
next = "ask"

[[step]]
id = "ask"
kind = "condition"
actor = "machine"
title = { en = "is it \"fine\"?", ru = "р", kk = "к" }
yes = { next = "done", outcome = "\"good\"" }
no = { next = "done" }

[[step]]
id = "done"
actor = "clerk"
title = { en = "done", ru = "р", kk = "к" }
"##;

    fn definitions() -> Vec<Definition> {
        vec![Definition::default_definition().clone(), Definition::from_toml(AWKWARD).unwrap()]
    }

    /// The one place that checks a rendering against a definition: every step
    /// id is mentioned, and for the diagrams every arrow of the definition is
    /// drawn, each branch with its label.
    fn check(definition: &Definition, format: &str, rendering: &str) {
        let code = &definition.service.code;
        for step in definition.steps() {
            assert!(rendering.contains(&step.id), "{code} {format}: step {} missing\n{rendering}", step.id);
        }
        if format == "table" {
            return;
        }
        let node = |id: &str| {
            let position = definition.steps().iter().position(|step| step.id == id).unwrap();
            format!("step{position}_{}", sanitized(id))
        };
        let arrow = |from: &str, to: &str, label: Option<String>| match (format, label) {
            ("mermaid", None) => format!("    {} --> {}\n", node(from), node(to)),
            ("mermaid", Some(label)) => format!("    {} -->|\"{}\"| {}\n", node(from), mermaid_text(&label), node(to)),
            (_, None) => format!("    {} -> {};\n", node(from), node(to)),
            (_, Some(label)) => format!("    {} -> {} [label=\"{}\"];\n", node(from), node(to), dot_text(&label)),
        };
        let mut expected = Vec::new();
        for step in definition.steps() {
            if let Some(next) = &step.next {
                expected.push(arrow(&step.id, next, None));
            }
            for (name, branch) in [("yes", &step.yes), ("no", &step.no)] {
                if let Some(branch) = branch {
                    let label = match &branch.outcome {
                        Some(outcome) => format!("{name}: {outcome}"),
                        None => name.to_owned(),
                    };
                    expected.push(arrow(&step.id, &branch.next, Some(label)));
                }
            }
        }
        expected.push(match format {
            "mermaid" => format!("    {START_NODE} --> {}\n", node(&definition.service.start)),
            _ => format!("    {START_NODE} -> {};\n", node(&definition.service.start)),
        });
        for arrow in expected {
            assert!(rendering.contains(&arrow), "{code} {format}: arrow {arrow:?} missing\n{rendering}");
        }
    }

    #[test]
    fn every_rendering_shows_every_step_and_every_arrow() {
        for definition in definitions() {
            for (format, render) in RENDERINGS {
                check(&definition, format, &render(&definition));
            }
        }
    }

    #[test]
    fn the_mermaid_labels_both_branches_of_each_condition() {
        for definition in definitions() {
            let rendering = mermaid(&definition);
            let conditions = definition.steps().iter().filter(|step| step.kind == StepKind::Condition);
            for (position, step) in definition.steps().iter().enumerate() {
                if step.kind != StepKind::Condition {
                    continue;
                }
                let node = format!("step{position}_{}", sanitized(&step.id));
                for label in ["yes", "no"] {
                    let arrow = format!("    {node} -->|\"{label}");
                    assert!(rendering.contains(&arrow), "{}: {arrow} missing\n{rendering}", step.id);
                }
                assert!(rendering.contains(&format!("    {node}{{\"")), "{} is not a diamond\n{rendering}", step.id);
            }
            assert!(conditions.count() > 0);
            assert!(rendering.starts_with("flowchart TD\n"), "{rendering}");
        }
    }

    #[test]
    fn the_default_definition_is_drawn_with_its_lanes_durations_and_outcomes() {
        let definition = Definition::default_definition();
        let rendering = mermaid(definition);
        for expected in [
            "subgraph lane0_sc_operator[\"State Corporation operator\"]",
            "[\"action-1<br/>accept and register the documents, pass them to…<br/>20 min\"]",
            "<br/>1 wd\"]",
            "<br/>2 wd\"}",
            "|\"yes: permitted\"|",
            "|\"no: refused\"|",
            "|\"no: data-unavailable\"|",
            "|\"yes\"|",
            "-.-> end_node",
        ] {
            assert!(rendering.contains(expected), "{expected} missing\n{rendering}");
        }
        let subgraphs = rendering.matches("subgraph ").count();
        let actors_with_steps = lanes(definition).len();
        assert_eq!(subgraphs, actors_with_steps);
        assert_eq!(rendering.matches("\n    end\n").count(), actors_with_steps);
        let table = table(definition);
        assert_eq!(table.lines().count(), definition.steps().len() + 2, "header, rule and one line a step\n{table}");
        assert!(table.contains("yes: action-2; no: process-8 (refused)"), "{table}");
        assert!(table.contains("yes: action-3 (permitted); no: action-3 (refused)"), "{table}");
    }

    #[test]
    fn the_summary_gives_the_form_the_cost_the_terms_and_where_each_ground_is_given() {
        let summary = summary(Definition::default_definition());
        for expected in [
            "form           paper\n",
            "result form    paper\n",
            "cost           free of charge to individuals\n",
            "term           service-term: 5 wd from process-7 to action-4",
            "term           sc-handling: 15 min from process-2 to process-6",
            "term           office-term: 5 wd from action-1 to action-4",
            "channel        provider-office: the provider's office (from action-1; action-2 instead of condition-2, office-issue instead of process-9; action-2 also gives the grounds of condition-2)",
            "refusal ground incomplete-package at condition-2:",
            "refusal ground harm-to-child at action-2:",
            "hours          sc-operator, sc-workstation: 09:00-20:00; Saturdays 09:00-13:00 (assumption)\n",
            "hours          regional-arm, provider-office, provider-specialist, provider-executor, provider-head: 09:00-13:00, 14:00-18:00 (assumption)\n",
        ] {
            assert!(summary.contains(expected), "{expected} missing\n{summary}");
        }
    }

    #[test]
    fn quotes_and_markup_are_escaped() {
        let definition = Definition::from_toml(AWKWARD).unwrap();
        let rendering = mermaid(&definition);
        // Inside labels every quote is an entity: the only raw quotes are the label delimiters.
        for line in rendering.lines() {
            assert_eq!(line.matches('"').count() % 2, 0, "unbalanced quotes in {line:?}");
            let without_syntax = line.replace("<br/>", "").replace("-.->", "").replace("-->", "");
            assert!(!without_syntax.contains(['<', '>']), "raw markup in {line:?}");
            assert!(!line.contains('`'), "raw backtick in {line:?}");
        }
        assert!(rendering.contains("#quot;hello#quot;"), "{rendering}");
        assert!(rendering.contains("#lt;main#gt; #35;1"), "{rendering}");
        assert!(rendering.contains("|\"yes: #quot;good#quot;\"|"), "{rendering}");
        assert!(!rendering.contains("\n    end[") && !rendering.contains(" end --"), "a step id is not a node id");
        let graph = dot(&definition);
        assert!(graph.contains("say \\\"hello\\\""), "{graph}");
        assert!(graph.contains("label=\"the \\\"chief\\\" clerk <main> #1\";"), "{graph}");
    }

    #[test]
    fn titles_are_shortened_at_a_word_boundary() {
        let check = |title: &str, expected: &str| assert_eq!(short_title(title), expected, "{title}");
        check("sign the result", "sign the result");
        check(
            "request the applicant's data from the registry through the gateway",
            "request the applicant's data from the registry…",
        );
        check(&"x".repeat(60), &format!("{}…", "x".repeat(48)));
    }

    #[test]
    fn the_output_is_deterministic() {
        for (_, render) in RENDERINGS {
            let definition = Definition::default_definition();
            assert_eq!(render(definition), render(&definition.clone()));
        }
    }

    #[test]
    fn the_svg_marks_the_current_step_and_the_done_ones() {
        let definition = Definition::default_definition();
        let drawn = svg(definition, &["process-1", "process-2"], Some("process-3"), "en");
        assert!(drawn.starts_with("<svg "), "{drawn}");
        assert_eq!(drawn.matches("<g class=\"step").count(), definition.steps().len());
        assert!(drawn.contains("<g class=\"step current\" data-step=\"process-3\" aria-current=\"step\">"));
        assert!(drawn.contains("<g class=\"step done\" data-step=\"process-1\">"));
        assert_eq!(drawn.matches("aria-current").count(), 1);
        assert!(drawn.trim_end().ends_with("</svg>"));
    }

    /// A rectangle: left, top, right, bottom.
    type Rect = (f64, f64, f64, f64);

    /// The value of attribute `name` in the tag `tag`.
    fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
        let (_, rest) = tag.split_once(&format!(" {name}=\""))?;
        rest.split('"').next()
    }

    fn number(text: &str) -> f64 {
        text.parse().unwrap_or_else(|_| panic!("not a number: {text:?}"))
    }

    /// Each step's shape in the drawing, by step id: a box's rectangle, or a condition's bounds.
    fn shapes(drawn: &str) -> HashMap<String, Rect> {
        let mut shapes = HashMap::new();
        for group in drawn.split("<g class=\"step").skip(1) {
            let id = attribute(group, "data-step").unwrap().to_owned();
            let rect = if let Some((_, rect)) = group.split_once("<rect class=\"shape\"") {
                let (x, y) = (number(attribute(rect, "x").unwrap()), number(attribute(rect, "y").unwrap()));
                (x, y, x + number(attribute(rect, "width").unwrap()), y + number(attribute(rect, "height").unwrap()))
            } else {
                let (_, polygon) = group.split_once("<polygon class=\"shape\"").unwrap();
                let points: Vec<(f64, f64)> = attribute(polygon, "points")
                    .unwrap()
                    .split(' ')
                    .map(|point| point.split_once(',').map(|(x, y)| (number(x), number(y))).unwrap())
                    .collect();
                let xs = points.iter().map(|p| p.0);
                let ys = points.iter().map(|p| p.1);
                (
                    xs.clone().fold(f64::MAX, f64::min),
                    ys.clone().fold(f64::MAX, f64::min),
                    xs.fold(0.0, f64::max),
                    ys.fold(0.0, f64::max),
                )
            };
            shapes.insert(id, rect);
        }
        shapes
    }

    /// Whether the segment from `a` to `b` (horizontal or vertical, as every edge's are) enters `rect`'s inside.
    fn crosses(a: (f64, f64), b: (f64, f64), rect: Rect) -> bool {
        let (left, top, right, bottom) = (rect.0 + 0.5, rect.1 + 0.5, rect.2 - 0.5, rect.3 - 0.5);
        let (x1, x2) = (a.0.min(b.0), a.0.max(b.0));
        let (y1, y2) = (a.1.min(b.1), a.1.max(b.1));
        x1 < right && x2 > left && y1 < bottom && y2 > top
    }

    /// Annex 1 drawn in each language for each definition: no segment of an
    /// arrow runs through the shape of a step other than the two it joins, every
    /// segment is horizontal or vertical, and no two arrows' labels (measured
    /// at the drawing's own 8 px a character, 12 px high) overlap.
    #[test]
    fn no_arrow_crosses_a_step_and_no_label_lies_on_another() {
        for definition in definitions() {
            for lang in ["kk", "ru", "en"] {
                let drawn = svg(&definition, &[], None, lang);
                let shapes = shapes(&drawn);
                assert_eq!(shapes.len(), definition.steps().len());
                let mut edges = 0;
                for path in drawn.split("<path class=\"edge\"").skip(1) {
                    edges += 1;
                    let from = attribute(path, "data-from").unwrap();
                    let to = attribute(path, "data-to").unwrap();
                    let numbers: Vec<f64> = attribute(path, "d")
                        .unwrap()
                        .split(' ')
                        .filter(|part| !["M", "L"].contains(part))
                        .map(number)
                        .collect();
                    let points: Vec<(f64, f64)> = numbers.chunks(2).map(|pair| (pair[0], pair[1])).collect();
                    for segment in points.windows(2) {
                        let (a, b) = (segment[0], segment[1]);
                        assert!(a.0 == b.0 || a.1 == b.1, "{lang}: {from} → {to}: a slanted segment {a:?} {b:?}");
                        for (step, rect) in &shapes {
                            if step != from && step != to {
                                assert!(
                                    !crosses(a, b, *rect),
                                    "{lang}: the arrow {from} → {to} runs through {step} ({a:?} to {b:?}, {rect:?})"
                                );
                            }
                        }
                    }
                }
                assert!(edges >= definition.steps().len() - 1, "{lang}: every arrow drawn ({edges})");
                let labels: Vec<(String, Rect)> = drawn
                    .split("<text class=\"edge-label\"")
                    .skip(1)
                    .map(|tag| {
                        let text = tag[tag.find('>').unwrap() + 1..tag.find("</text>").unwrap()].to_owned();
                        let (x, y) = (number(attribute(tag, "x").unwrap()), number(attribute(tag, "y").unwrap()));
                        let width = 8.0 * text.chars().count() as f64;
                        let left = match attribute(tag, "text-anchor") {
                            Some("end") => x - width,
                            Some("middle") => x - width / 2.0,
                            _ => x,
                        };
                        (text, (left, y - 11.0, left + width, y + 3.0))
                    })
                    .collect();
                assert!(!labels.is_empty());
                for (index, (text, rect)) in labels.iter().enumerate() {
                    for (other, other_rect) in &labels[index + 1..] {
                        let apart = rect.2 <= other_rect.0
                            || other_rect.2 <= rect.0
                            || rect.3 <= other_rect.1
                            || other_rect.3 <= rect.1;
                        assert!(apart, "{lang}: the labels {text:?} {rect:?} and {other:?} {other_rect:?} overlap");
                    }
                    for (step, shape) in &shapes {
                        assert!(!crosses((rect.0, rect.1), (rect.2, rect.3), *shape), "{lang}: {text:?} on {step}");
                    }
                }
            }
        }
    }
}
