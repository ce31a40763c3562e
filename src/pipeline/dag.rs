//! The stage graph: which stage produces each dep, validation (duplicate and overlapping outputs,
//! cycles, deps nothing produces), and execution order (SPEC.md 7.1).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use petgraph::graph::{DiGraph, NodeIndex};

use super::did_you_mean;
use super::spec::{PipelineSpec, StageSpec};

#[derive(thiserror::Error, Debug)]
pub(crate) enum DagError {
    #[error("stages `{first}` and `{second}` both write `{path}`")]
    DuplicateOutput {
        path: String,
        first: String,
        second: String,
    },
    #[error("output `{inner}` of stage `{inner_stage}` is inside output directory `{outer}` of stage `{outer_stage}`")]
    OverlappingOutputs {
        outer: String,
        outer_stage: String,
        inner: String,
        inner_stage: String,
    },
    #[error("circular dependency between stages: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("stage `{stage}` depends on `{path}`, which does not exist and no stage produces")]
    MissingDep {
        stage: String,
        path: String,
        suggestion: Option<String>,
    },
    #[error("unknown stage `{name}`")]
    UnknownStage {
        name: String,
        suggestion: Option<String>,
    },
}

impl DagError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            DagError::MissingDep {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean `{s}`?")),
            DagError::MissingDep { .. } => {
                Some("create the file, or add a stage that writes it".into())
            }
            DagError::UnknownStage {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean `{s}`?")),
            DagError::UnknownStage { .. } => Some("`pivot list` shows the stages".into()),
            DagError::DuplicateOutput { .. } => {
                Some("each output path may be written by one stage only".into())
            }
            DagError::OverlappingOutputs { .. } => {
                Some("an output may not live inside another stage's output directory".into())
            }
            DagError::Cycle(_) => {
                Some("a stage may not depend, directly or not, on its own outputs".into())
            }
        }
    }
}

/// The validated stage graph. Stage indices are registration order.
pub(crate) struct Dag {
    pub stages: Vec<StageSpec>,
    index: HashMap<String, usize>,
    /// upstream[i]: stages producing a dep of stage i (sorted, unique).
    upstream: Vec<Vec<usize>>,
    /// downstream[i]: stages consuming an output of stage i.
    downstream: Vec<Vec<usize>>,
    /// producer[i][k]: the stages producing dep k of stage i.
    dep_producers: Vec<Vec<Vec<usize>>>,
}

fn display(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.display().to_string())
}

impl Dag {
    /// Builds and validates the graph. `root` is the project root (for messages and relative paths).
    #[cfg(test)]
    pub(crate) fn build(spec: PipelineSpec, root: &Path) -> Result<Dag, DagError> {
        Dag::build_with_tracked(spec, root, &[])
    }

    /// [`Dag::build`], where a dep that no stage produces may also be missing from disk when it
    /// is tracked data: one of `tracked` (absolute paths of `.pvt`-tracked files and
    /// directories) or inside one. `pivot checkout` can restore it, so the pipeline is valid;
    /// running a stage that reads it while it is missing is refused later, with that hint.
    pub(crate) fn build_with_tracked(
        spec: PipelineSpec,
        root: &Path,
        tracked: &[PathBuf],
    ) -> Result<Dag, DagError> {
        let stages = spec.stages;
        let index: HashMap<String, usize> = stages
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();

        // Output path -> producing stage; BTreeMap for "outputs under a directory" range queries.
        let mut outputs: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for (i, s) in stages.iter().enumerate() {
            for o in &s.outs {
                let p = o.abs().to_path_buf();
                if let Some(&j) = outputs.get(&p) {
                    if j != i {
                        return Err(DagError::DuplicateOutput {
                            path: display(root, &p),
                            first: stages[j].name.clone(),
                            second: s.name.clone(),
                        });
                    }
                }
                outputs.insert(p, i);
            }
        }
        for (p, &i) in &outputs {
            for anc in p.ancestors().skip(1) {
                if let Some(&j) = outputs.get(anc) {
                    return Err(DagError::OverlappingOutputs {
                        outer: format!("{}/", display(root, anc)),
                        outer_stage: stages[j].name.clone(),
                        inner: display(root, p),
                        inner_stage: stages[i].name.clone(),
                    });
                }
            }
        }

        let mut dep_producers = Vec::with_capacity(stages.len());
        let mut upstream = vec![Vec::new(); stages.len()];
        let mut downstream = vec![Vec::new(); stages.len()];
        for (i, s) in stages.iter().enumerate() {
            let mut per_dep = Vec::with_capacity(s.deps.len());
            for d in &s.deps {
                let p = d.abs();
                let mut producers: Vec<usize> = Vec::new();
                // Exact match, or the dep lies inside an output directory.
                if let Some(&j) = p.ancestors().find_map(|a| outputs.get(a)) {
                    producers.push(j);
                }
                // The dep is a directory holding outputs.
                let prefix = p.to_path_buf();
                for (op, &j) in outputs.range(prefix.clone()..) {
                    if !op.starts_with(&prefix) {
                        break;
                    }
                    producers.push(j);
                }
                producers.sort_unstable();
                producers.dedup();
                let restorable = || tracked.iter().any(|t| p.starts_with(t));
                if producers.is_empty() && !p.exists() && !restorable() {
                    let rel = display(root, p);
                    let known: Vec<String> = outputs.keys().map(|o| display(root, o)).collect();
                    let suggestion =
                        did_you_mean(&rel, known.iter().map(String::as_str)).or_else(|| {
                            // A close file on disk is as likely as a close output.
                            let dir = p.parent()?;
                            let names: Vec<String> = std::fs::read_dir(dir)
                                .ok()?
                                .filter_map(|e| e.ok())
                                .map(|e| display(root, &e.path()))
                                .collect();
                            did_you_mean(&rel, names.iter().map(String::as_str))
                        });
                    return Err(DagError::MissingDep {
                        stage: s.name.clone(),
                        path: rel,
                        suggestion,
                    });
                }
                for &j in &producers {
                    if j != i && !upstream[i].contains(&j) {
                        upstream[i].push(j);
                        downstream[j].push(i);
                    }
                }
                per_dep.push(producers);
            }
            dep_producers.push(per_dep);
        }
        for list in upstream.iter_mut().chain(downstream.iter_mut()) {
            list.sort_unstable();
        }

        // A stage reading its own output is a cycle of one.
        for (i, per_dep) in dep_producers.iter().enumerate() {
            if per_dep.iter().any(|ps| ps.contains(&i)) {
                return Err(DagError::Cycle(vec![
                    stages[i].name.clone(),
                    stages[i].name.clone(),
                ]));
            }
        }
        let mut g: DiGraph<usize, ()> = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..stages.len()).map(|i| g.add_node(i)).collect();
        for (i, ups) in upstream.iter().enumerate() {
            for &j in ups {
                g.add_edge(nodes[j], nodes[i], ());
            }
        }
        if let Some(scc) = petgraph::algo::tarjan_scc(&g)
            .into_iter()
            .find(|c| c.len() > 1)
        {
            let mut members: Vec<usize> = scc.iter().map(|n| g[*n]).collect();
            members.sort_unstable();
            let mut names: Vec<String> = members.iter().map(|&i| stages[i].name.clone()).collect();
            names.push(names[0].clone());
            return Err(DagError::Cycle(names));
        }

        Ok(Dag {
            stages,
            index,
            upstream,
            downstream,
            dep_producers,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.stages.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    pub(crate) fn name(&self, i: usize) -> &str {
        &self.stages[i].name
    }

    pub(crate) fn upstream(&self, i: usize) -> &[usize] {
        &self.upstream[i]
    }

    pub(crate) fn downstream(&self, i: usize) -> &[usize] {
        &self.downstream[i]
    }

    /// The stages producing dep `k` of stage `i` (empty for an external input).
    pub(crate) fn dep_producers(&self, i: usize, k: usize) -> &[usize] {
        &self.dep_producers[i][k]
    }

    pub(crate) fn lookup(&self, name: &str) -> Result<usize, DagError> {
        self.index
            .get(name)
            .copied()
            .ok_or_else(|| DagError::UnknownStage {
                name: name.to_owned(),
                suggestion: did_you_mean(name, self.stages.iter().map(|s| s.name.as_str())),
            })
    }

    /// Dependencies first, in registration order otherwise (DFS post-order).
    fn postorder(&self, roots: &[usize]) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut order = Vec::new();
        for &r in roots {
            // Iterative DFS: deep chains (thousands of stages) must not overflow the stack.
            let mut stack = vec![(r, 0usize)];
            while let Some((node, child)) = stack.pop() {
                if child == 0 {
                    if seen[node] {
                        continue;
                    }
                    seen[node] = true;
                }
                let ups = &self.upstream[node];
                if let Some(&next) = ups.get(child) {
                    stack.push((node, child + 1));
                    if !seen[next] {
                        stack.push((next, 0));
                    }
                } else {
                    order.push(node);
                }
            }
        }
        order
    }

    /// Every stage, dependencies first.
    pub(crate) fn order(&self) -> Vec<usize> {
        self.postorder(&(0..self.len()).collect::<Vec<_>>())
    }

    /// The targets and everything upstream of them, dependencies first.
    pub(crate) fn with_upstream(&self, targets: &[usize]) -> Vec<usize> {
        let mut sorted = targets.to_vec();
        sorted.sort_unstable();
        self.postorder(&sorted)
    }

    /// Exactly the given stages, ordered so that dependencies among them come first.
    pub(crate) fn only(&self, stages: &[usize]) -> Vec<usize> {
        let mut include = vec![false; self.len()];
        for &s in stages {
            include[s] = true;
        }
        // Walk the whole graph so edges through excluded stages still order included ones.
        self.postorder(&(0..self.len()).collect::<Vec<_>>())
            .into_iter()
            .filter(|&i| include[i])
            .collect()
    }

    /// Every stage transitively downstream of `i` (not including `i`).
    pub(crate) fn all_downstream(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![i];
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            for &d in &self.downstream[n] {
                if !seen[d] {
                    seen[d] = true;
                    out.push(d);
                    stack.push(d);
                }
            }
        }
        out.sort_unstable();
        out
    }
}
