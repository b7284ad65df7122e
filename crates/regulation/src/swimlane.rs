//! Annex 2 of the regulation, the handbook of business processes (paragraph
//! 7: the order of the steps between the provider's staff), drawn from the
//! definition as a swimlane diagram: one lane per actor, each step in its
//! actor's lane with its duration, and the hand-overs between lanes: a step's
//! work handed to its actor first (`handed_over_by`), and what a step sends
//! on through another participant (`via`: the gateway between the State
//! Corporation and the provider). Mermaid, Graphviz and SVG; pure and
//! deterministic, in the definition's order.

use crate::definition::{Definition, Step, StepKind};

/// A box of the diagram: a step, a hand-over that begins one, or a relay.
struct Node {
    id: String,
    lane: usize,
    /// The first line (a step's id, "hand-over", "relay"), then the rest.
    lines: Vec<String>,
    condition: bool,
}

/// An arrow; `crosses` when its two ends are in different lanes (a hand-over between lanes).
struct Arrow {
    from: usize,
    to: usize,
    label: Option<String>,
    crosses: bool,
}

/// The diagram: lanes (role, title), boxes in order, arrows.
struct Swimlane {
    lanes: Vec<(String, String)>,
    nodes: Vec<Node>,
    arrows: Vec<Arrow>,
}

impl Swimlane {
    fn of(definition: &Definition) -> Swimlane {
        // Lanes in the order of their first box; a relay's lane right after its sender's.
        let mut lanes: Vec<String> = Vec::new();
        let add_lane = |role: &str, lanes: &mut Vec<String>, after: Option<&str>| {
            if !lanes.iter().any(|lane| lane == role) {
                match after.and_then(|after| lanes.iter().position(|lane| lane == after)) {
                    Some(position) => lanes.insert(position + 1, role.to_owned()),
                    None => lanes.push(role.to_owned()),
                }
            }
        };
        for step in definition.steps() {
            if let Some(by) = &step.handed_over_by {
                add_lane(by, &mut lanes, None);
            }
            add_lane(&step.actor, &mut lanes, None);
            if let Some(via) = &step.via {
                add_lane(via, &mut lanes, Some(&step.actor));
            }
        }
        let lane_of = |role: &str| lanes.iter().position(|lane| lane == role).unwrap_or(0);
        let mut nodes = Vec::new();
        // Where each step's arrows start and end: its relay (or itself), its hand-over (or itself).
        let mut starts = Vec::new();
        let mut owns = Vec::new();
        let mut entries = Vec::new();
        let mut arrows = Vec::new();
        for (index, step) in definition.steps().iter().enumerate() {
            let entry = match &step.handed_over_by {
                Some(by) => {
                    nodes.push(Node {
                        id: format!("handover{index}"),
                        lane: lane_of(by),
                        lines: vec!["hand-over".to_owned(), format!("to {}", actor_title(definition, &step.actor))],
                        condition: false,
                    });
                    Some(nodes.len() - 1)
                }
                None => None,
            };
            nodes.push(Node {
                id: format!("step{index}"),
                lane: lane_of(&step.actor),
                lines: step_lines(step),
                condition: step.kind == StepKind::Condition,
            });
            let own = nodes.len() - 1;
            if let Some(entry) = entry {
                arrows.push(Arrow { from: entry, to: own, label: None, crosses: nodes[entry].lane != nodes[own].lane });
            }
            let start = match &step.via {
                Some(via) => {
                    nodes.push(Node {
                        id: format!("relay{index}"),
                        lane: lane_of(via),
                        lines: vec!["relay".to_owned(), format!("from {}", step.id)],
                        condition: false,
                    });
                    let relay = nodes.len() - 1;
                    arrows.push(Arrow { from: own, to: relay, label: None, crosses: true });
                    relay
                }
                None => own,
            };
            starts.push(start);
            owns.push(own);
            entries.push(entry.unwrap_or(own));
        }
        let position = |id: &str| definition.steps().iter().position(|step| step.id == id);
        for (index, step) in definition.steps().iter().enumerate() {
            for (target, label, in_channel) in targets(definition, step) {
                let Some(to) = position(&target) else { continue };
                // A channel's own step is reached from the step itself (at the office, not through the gateway).
                let from = if in_channel { owns[index] } else { starts[index] };
                let to = entries[to];
                arrows.push(Arrow { from, to, label, crosses: nodes[from].lane != nodes[to].lane });
            }
        }
        Swimlane {
            lanes: lanes
                .into_iter()
                .map(|role| (actor_title(definition, &role), role))
                .map(|(title, role)| (role, title))
                .collect(),
            nodes,
            arrows,
        }
    }
}

/// Where a step leads, with the branch's label, and what a channel takes in a target's place.
fn targets(definition: &Definition, step: &Step) -> Vec<(String, Option<String>, bool)> {
    let mut out = Vec::new();
    if let Some(next) = &step.next {
        out.push((next.clone(), None, false));
    }
    for (name, branch) in [("yes", &step.yes), ("no", &step.no)] {
        if let Some(branch) = branch {
            let label = match &branch.outcome {
                Some(outcome) => format!("{name}: {outcome}"),
                None => name.to_owned(),
            };
            out.push((branch.next.clone(), Some(label), false));
        }
    }
    let mut replaced = Vec::new();
    for (target, _, _) in &out {
        for channel in &definition.channels {
            if let Some(instead) = channel.instead.get(target) {
                replaced.push((instead.clone(), Some(channel.id.clone()), true));
            }
        }
    }
    out.extend(replaced);
    out
}

fn step_lines(step: &Step) -> Vec<String> {
    let mut lines = vec![step.id.clone(), crate::render::short_title(&step.title.en)];
    lines.push(step.duration.map_or_else(|| "–".to_owned(), |duration| duration.to_string()));
    lines
}

fn actor_title(definition: &Definition, role: &str) -> String {
    definition.actors.get(role).map_or_else(|| role.to_owned(), |name| name.en.clone())
}

/// Annex 2 as a Mermaid flowchart: a subgraph per lane, the hand-overs between lanes as thick arrows.
pub fn mermaid(definition: &Definition) -> String {
    let chart = Swimlane::of(definition);
    let text = crate::render::mermaid_text;
    let mut lines = vec!["flowchart LR".to_owned(), format!("    %% Annex 2: {}", text(&definition.service.code))];
    for (index, (role, title)) in chart.lanes.iter().enumerate() {
        lines.push(format!("    subgraph lane{index}_{}[\"{}\"]", crate::render::sanitized(role), text(title)));
        lines.push("        direction LR".to_owned());
        for node in chart.nodes.iter().filter(|node| node.lane == index) {
            let label = node.lines.iter().map(|line| text(line)).collect::<Vec<_>>().join("<br/>");
            if node.condition {
                lines.push(format!("        {}{{\"{label}\"}}", node.id));
            } else {
                lines.push(format!("        {}[\"{label}\"]", node.id));
            }
        }
        lines.push("    end".to_owned());
    }
    for arrow in &chart.arrows {
        let link = if arrow.crosses { "==>" } else { "-->" };
        let (from, to) = (&chart.nodes[arrow.from].id, &chart.nodes[arrow.to].id);
        match &arrow.label {
            Some(label) => lines.push(format!("    {from} {link}|\"{}\"| {to}", text(label))),
            None => lines.push(format!("    {from} {link} {to}")),
        }
    }
    lines.join("\n") + "\n"
}

/// Annex 2 as a Graphviz graph: a cluster per lane, the hand-overs between lanes bold.
pub fn dot(definition: &Definition) -> String {
    let chart = Swimlane::of(definition);
    let text = crate::render::dot_text;
    let mut lines = vec![
        format!("digraph \"{} annex 2\" {{", text(&definition.service.code)),
        "    rankdir=LR;".to_owned(),
        "    node [shape=box, style=rounded];".to_owned(),
    ];
    for (index, (role, title)) in chart.lanes.iter().enumerate() {
        lines.push(format!("    subgraph cluster_lane{index}_{} {{", crate::render::sanitized(role)));
        lines.push(format!("        label=\"{}\";", text(title)));
        for node in chart.nodes.iter().filter(|node| node.lane == index) {
            let label = node.lines.iter().map(|line| text(line)).collect::<Vec<_>>().join("\\n");
            let shape = if node.condition { ", shape=diamond, style=solid" } else { "" };
            lines.push(format!("        {} [label=\"{label}\"{shape}];", node.id));
        }
        lines.push("    }".to_owned());
    }
    for arrow in &chart.arrows {
        let mut attributes = Vec::new();
        if let Some(label) = &arrow.label {
            attributes.push(format!("label=\"{}\"", text(label)));
        }
        if arrow.crosses {
            attributes.push("style=bold".to_owned());
        }
        let attributes = if attributes.is_empty() { String::new() } else { format!(" [{}]", attributes.join(", ")) };
        lines.push(format!("    {} -> {}{attributes};", chart.nodes[arrow.from].id, chart.nodes[arrow.to].id));
    }
    lines.push("}".to_owned());
    lines.join("\n") + "\n"
}

/// Annex 2 as SVG: the lanes as horizontal bands titled on the left, one
/// column a box in the definition's order, the hand-overs between lanes as
/// arrows of class `edge handover`.
pub fn svg(definition: &Definition) -> String {
    const TITLE_W: usize = 190;
    const COLUMN: usize = 150;
    const LANE_H: usize = 90;
    const BOX_W: usize = 136;
    const BOX_H: usize = 62;
    let chart = Swimlane::of(definition);
    let width = TITLE_W + chart.nodes.len().max(1) * COLUMN + 20;
    let height = chart.lanes.len().max(1) * LANE_H + 10;
    let centre = |index: usize| {
        let node = &chart.nodes[index];
        (TITLE_W + index * COLUMN + COLUMN / 2, node.lane * LANE_H + LANE_H / 2)
    };
    let xml = crate::render::xml_text;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"diagram annex-2\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-labelledby=\"annex2-title\">\n<title id=\"annex2-title\">{}</title>\n",
        xml(&format!("Annex 2, {}: {}", definition.service.code, definition.service.name_en))
    );
    out.push_str("<defs><marker id=\"annex2-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#57606a\"/></marker></defs>\n");
    for (index, (role, title)) in chart.lanes.iter().enumerate() {
        let y = index * LANE_H;
        out.push_str(&format!(
            "<g class=\"lane\" data-lane=\"{}\"><title>{}</title><rect x=\"0\" y=\"{y}\" width=\"{width}\" height=\"{LANE_H}\" fill=\"{}\" stroke=\"#d0d7de\"/><text x=\"8\" y=\"{}\" font-weight=\"bold\">{}</text></g>\n",
            xml(role),
            xml(title),
            if index % 2 == 0 { "#fafbfc" } else { "#f3f5f7" },
            y + LANE_H / 2 + 4,
            xml(&crate::render::truncate(title, 28))
        ));
    }
    for arrow in &chart.arrows {
        let ((x1, y1), (x2, y2)) = (centre(arrow.from), centre(arrow.to));
        let class = if arrow.crosses { "edge handover" } else { "edge" };
        let path = if x2 > x1 {
            format!(
                "M {} {y1} L {} {y1} L {} {y2} L {} {y2}",
                x1 + BOX_W / 2,
                x1 + COLUMN / 2,
                x1 + COLUMN / 2,
                x2 - BOX_W / 2
            )
        } else {
            // Back: under the boxes.
            let below = y1.max(y2) + BOX_H / 2 + 8;
            format!("M {x1} {} L {x1} {below} L {x2} {below} L {x2} {}", y1 + BOX_H / 2, y2 + BOX_H / 2)
        };
        out.push_str(&format!(
            "<path class=\"{class}\" d=\"{path}\" fill=\"none\" stroke=\"#57606a\" stroke-width=\"{}\" marker-end=\"url(#annex2-arrow)\"/>\n",
            if arrow.crosses { 2 } else { 1 }
        ));
        if let Some(label) = &arrow.label {
            out.push_str(&format!(
                "<text class=\"edge-label\" x=\"{}\" y=\"{}\" font-size=\"10\">{}</text>\n",
                x1 + COLUMN / 2 + 3,
                (y1 + y2) / 2 - 3,
                xml(label)
            ));
        }
    }
    for (index, node) in chart.nodes.iter().enumerate() {
        let (x, y) = centre(index);
        let (left, top) = (x - BOX_W / 2, y - BOX_H / 2);
        out.push_str(&format!("<g class=\"node\" data-node=\"{}\">", xml(&node.id)));
        if node.condition {
            out.push_str(&format!(
                "<polygon points=\"{x},{top} {},{y} {x},{} {left},{y}\" fill=\"#fff\" stroke=\"#24292f\"/>",
                left + BOX_W,
                top + BOX_H
            ));
        } else {
            out.push_str(&format!(
                "<rect x=\"{left}\" y=\"{top}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" fill=\"#fff\" stroke=\"#24292f\"/>"
            ));
        }
        let mut lines = vec![node.lines[0].clone()];
        if let Some(title) = node.lines.get(1) {
            lines.extend(crate::render::wrap(title, 24).into_iter().take(2));
        }
        if let Some(duration) = node.lines.get(2) {
            lines.push(duration.clone());
        }
        for (row, line) in lines.iter().enumerate() {
            let weight = if row == 0 { " font-weight=\"bold\"" } else { "" };
            out.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\"{weight}>{}</text>",
                top + 13 + row * 12,
                xml(line)
            ));
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_2_has_a_lane_per_actor_each_step_in_its_lane_and_the_hand_overs_between() {
        let definition = Definition::default_definition();
        let chart = Swimlane::of(definition);
        let roles: Vec<&str> = chart.lanes.iter().map(|(role, _)| role.as_str()).collect();
        for role in [
            "provider-office",
            "provider-specialist",
            "provider-executor",
            "provider-head",
            "sc-operator",
            "gateway",
            "regional-arm",
        ] {
            assert!(roles.contains(&role), "no lane for {role}: {roles:?}");
        }
        // Each step once, in its actor's lane, with its duration.
        for step in definition.steps() {
            let node = chart.nodes.iter().find(|node| node.lines[0] == step.id).unwrap();
            assert_eq!(chart.lanes[node.lane].0, step.actor, "{}", step.id);
            if let Some(duration) = step.duration {
                assert_eq!(node.lines[2], duration.to_string());
            }
        }
        let node = |first: &str, lane: &str| {
            chart.nodes.iter().position(|n| n.lines[0] == first && chart.lanes[n.lane].0 == lane).unwrap()
        };
        let arrow = |from: usize, to: usize| chart.arrows.iter().find(|a| a.from == from && a.to == to);
        // Action 3: the executor hands over to the head, across lanes.
        let handing = node("hand-over", "provider-executor");
        assert!(arrow(handing, node("action-3", "provider-head")).unwrap().crosses);
        // Process 6 sends through the gateway to process 7.
        let relay = chart.nodes.iter().position(|n| n.lines == ["relay", "from process-6"]).unwrap();
        assert_eq!(chart.lanes[chart.nodes[relay].lane].0, "gateway");
        assert!(arrow(node("process-6", "sc-workstation"), relay).is_some());
        assert!(arrow(relay, node("process-7", "regional-arm")).unwrap().crosses);
        // Within a lane, no hand-over: the SC workstation's condition 1 to process 4.
        assert!(!arrow(node("condition-1", "sc-workstation"), node("process-4", "sc-workstation")).unwrap().crosses);
        let mermaid = mermaid(definition);
        assert_eq!(mermaid.matches("subgraph ").count(), chart.lanes.len());
        assert!(mermaid.contains("==>") && mermaid.contains("-->"), "{mermaid}");
        let dot = dot(definition);
        assert_eq!(dot.matches("subgraph cluster_").count(), chart.lanes.len());
        let svg = svg(definition);
        assert_eq!(svg.matches("<g class=\"lane\"").count(), chart.lanes.len());
        assert_eq!(svg.matches("<g class=\"node\"").count(), chart.nodes.len());
        assert!(svg.contains("class=\"edge handover\""));
    }
}
