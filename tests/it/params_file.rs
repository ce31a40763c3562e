//! `params.yaml` is checked against each stage's params model: a key no model has is an error
//! naming file, stage and key (exit 2, nothing runs); an entry for no stage is a warning; a
//! malformed file exits 2. (A deliberate deviation from the reference, which ignores them.)

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import pydantic
from pivot.stage_def import StageParams


class Optim(pydantic.BaseModel):
    beta: float = 0.9


class TrainParams(StageParams):
    lr: float = 0.01
    optim: Optim = Optim()
    extra: dict = {{}}


def train(params: TrainParams) -> Annotated[dict, outputs.Out('model.json', loaders.JSON())]:
    _ran('train')
    return {{'lr': params.lr, 'beta': params.optim.beta, 'extra': params.extra}}


pipeline = Pipeline('params')
pipeline.register(train)
"
        ),
    );
    p
}

#[test]
fn a_misspelt_param_stops_the_command_naming_file_stage_and_key() {
    let p = project();
    p.write("params.yaml", "train:\n  lrr: 0.5\n");
    for args in [
        &["repro"][..],
        &["status"],
        &["verify"],
        &["repro", "--dry-run"],
    ] {
        let r = p.pivot(args);
        r.code(2);
        assert!(
            r.stderr
                .contains("`params.yaml`: stage `train` has no param `lrr` (did you mean `lr`?)"),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert!(p.take_runs().is_empty());
    assert!(!p.exists("model.json"));
}

#[test]
fn nested_models_are_checked_and_dict_fields_take_any_key() {
    let p = project();
    p.write(
        "params.yaml",
        "train:\n  optim:\n    betta: 0.5\n  extra:\n    anything: 1\n",
    );
    let r = p.pivot(&["repro"]);
    r.code(2);
    assert!(r.stderr.contains("no param `optim.betta`"), "{}", r.stderr);
    p.write(
        "params.yaml",
        "train:\n  optim:\n    beta: 0.5\n  extra:\n    anything: 1\n",
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["train"]);
    assert!(
        p.read("model.json").contains("0.5"),
        "{}",
        p.read("model.json")
    );
}

#[test]
fn an_entry_for_no_stage_is_a_warning_and_the_run_goes_on() {
    let p = project();
    p.write("params.yaml", "nostage:\n  lr: 0.5\ntrain:\n  lr: 0.2\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr
            .contains("warning: `params.yaml` has params for `nostage`, which is no stage"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["train"]);
}

#[test]
fn a_malformed_params_file_exits_2() {
    let p = project();
    p.write("params.yaml", "train: [1, 2\n");
    let r = p.pivot(&["repro"]);
    r.code(2);
    assert!(
        r.stderr.contains("cannot read `params.yaml`"),
        "{}",
        r.stderr
    );
    p.write("params.yaml", "- 1\n- 2\n");
    let r = p.pivot(&["status"]);
    r.code(2);
    assert!(r.stderr.contains("must map stage names"), "{}", r.stderr);
    assert!(p.take_runs().is_empty());
}
