//! `pivot dag`: the stage graph as a text tree (default), Graphviz DOT or Mermaid (stdout).

use std::collections::BTreeSet;

use super::{Globals, Session};
use crate::cli::DagArgs;
use crate::error::ExitStatus;

pub(super) fn run(globals: &Globals, args: DagArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let shown = s.order_with_upstream(&args.targets)?;
    let mut include = vec![false; s.dag.len()];
    shown.iter().for_each(|&i| include[i] = true);

    let out = if args.dot || args.mermaid {
        let edges = edges(&s, &shown, &include, args.stages);
        let nodes: BTreeSet<String> = if args.stages {
            shown.iter().map(|&i| s.dag.name(i).to_owned()).collect()
        } else {
            shown
                .iter()
                .flat_map(|&i| {
                    let st = &s.dag.stages[i];
                    st.deps
                        .iter()
                        .map(|d| d.path.clone())
                        .chain(st.outs.iter().map(|o| o.path.clone()))
                })
                .collect()
        };
        if args.dot {
            dot(&nodes, &edges)
        } else {
            mermaid(&nodes, &edges)
        }
    } else {
        tree(&s, &shown, &include)
    };
    s.printer.data(out)?;
    Ok(ExitStatus::Success)
}

fn edges(
    s: &Session,
    shown: &[usize],
    include: &[bool],
    stages: bool,
) -> BTreeSet<(String, String)> {
    let mut e = BTreeSet::new();
    for &i in shown {
        let st = &s.dag.stages[i];
        if stages {
            for &u in s.dag.upstream(i) {
                if include[u] {
                    e.insert((s.dag.name(u).to_owned(), st.name.clone()));
                }
            }
        } else {
            for d in &st.deps {
                for o in &st.outs {
                    e.insert((d.path.clone(), o.path.clone()));
                }
            }
        }
    }
    e
}

fn dot(nodes: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> String {
    let mut out = String::from("digraph {\n");
    let linked: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    for n in nodes.iter().filter(|n| !linked.contains(n)) {
        out.push_str(&format!("  {n:?};\n"));
    }
    for (a, b) in edges {
        out.push_str(&format!("  {a:?} -> {b:?};\n"));
    }
    out.push_str("}\n");
    out
}

fn mermaid(nodes: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> String {
    let ids: std::collections::HashMap<&String, usize> =
        nodes.iter().enumerate().map(|(k, n)| (n, k)).collect();
    let mut out = String::from("flowchart TD\n");
    for (n, k) in nodes.iter().map(|n| (n, ids[n])) {
        out.push_str(&format!("    node{k}[\"{}\"]\n", n.replace('"', "#quot;")));
    }
    for (a, b) in edges {
        if let (Some(x), Some(y)) = (ids.get(a), ids.get(b)) {
            out.push_str(&format!("    node{x}-->node{y}\n"));
        }
    }
    out
}

/// Stages as a tree from the sources down; a stage reached a second time is marked `(*)`.
fn tree(s: &Session, shown: &[usize], include: &[bool]) -> String {
    if shown.is_empty() {
        return "(no stages)\n".into();
    }
    let mut t = Tree {
        s,
        include,
        printed: vec![false; s.dag.len()],
        out: String::new(),
    };
    for &i in shown {
        if s.dag.upstream(i).iter().all(|&u| !include[u]) {
            t.walk(i, "", None);
        }
    }
    t.out
}

struct Tree<'a> {
    s: &'a Session,
    include: &'a [bool],
    printed: Vec<bool>,
    out: String,
}

impl Tree<'_> {
    /// `last`: None for a top-level node, else whether it is its parent's last child.
    fn walk(&mut self, i: usize, prefix: &str, last: Option<bool>) {
        let branch = match last {
            None => "",
            Some(true) => "└── ",
            Some(false) => "├── ",
        };
        let seen = self.printed[i];
        let mark = if seen { " (*)" } else { "" };
        self.out
            .push_str(&format!("{prefix}{branch}{}{mark}\n", self.s.dag.name(i)));
        if seen {
            return;
        }
        self.printed[i] = true;
        let kids: Vec<usize> = self
            .s
            .dag
            .downstream(i)
            .iter()
            .copied()
            .filter(|&d| self.include[d])
            .collect();
        let child_prefix = match last {
            None => String::new(),
            Some(true) => format!("{prefix}    "),
            Some(false) => format!("{prefix}│   "),
        };
        for (k, &d) in kids.iter().enumerate() {
            self.walk(d, &child_prefix, Some(k + 1 == kids.len()));
        }
    }
}
